import type { ASTNode } from '@marcbachmann/cel-js';
import { ALLOWED_FUNCTIONS, ALLOWED_METHODS, LITERAL_ARGUMENT, MACROS, REGEX_FUNCTIONS, REGEX_REFUSAL } from './allowed-functions.js';
import { astChildren, containsMapMacro } from './ast-children.js';
import { EVENT_VARIABLE } from '../event-scope.js';

export type TreeProblemKind = 'too_deep' | 'unknown_variable' | 'regex_not_allowed' | 'function_not_allowed' | 'literal_required' | 'macro_nesting' | 'macro_arguments';

export interface TreeProblem {
  kind: TreeProblemKind;
  message: string;
  offset: number;
}

export interface TreeLimits {
  maxDepth: number;
  maxMacroNesting: number;
}

const FUNCTION_LIST = [...ALLOWED_FUNCTIONS].join(', ');
const METHOD_LIST = [...ALLOWED_METHODS, ...MACROS].join(', ');

/**
 * Walks the parsed tree once and returns the first thing walflow refuses: a free identifier other than
 * `event`, a function outside the allow-list, a macro inside a macro or over the output of `map`, or nesting
 * deeper than the limit. A chain of `&&` or `||` counts as one level, so a long list of alternatives is not
 * mistaken for nesting.
 */
export function findTreeProblem(root: ASTNode, limits: TreeLimits): TreeProblem | undefined {
  const visit = (node: ASTNode, depth: number, bound: ReadonlySet<string>, macroNesting: number): TreeProblem | undefined => {
    if (depth > limits.maxDepth) {
      return { kind: 'too_deep', message: `expression is nested deeper than ${limits.maxDepth} levels`, offset: node.pos };
    }
    const each = (nodes: readonly ASTNode[], names = bound, nesting = macroNesting): TreeProblem | undefined => {
      for (const next of nodes) {
        // The same logical operator again continues the chain rather than nesting deeper.
        const sameChain = (node.op === '&&' || node.op === '||') && next.op === node.op;
        const problem = visit(next, sameChain ? depth : depth + 1, names, nesting);
        if (problem) return problem;
      }
      return undefined;
    };

    if (node.op === 'id') {
      if (node.args === EVENT_VARIABLE || bound.has(node.args)) return undefined;
      return { kind: 'unknown_variable', message: `unknown variable '${node.args}'; expressions can only read event`, offset: node.pos };
    }
    if (node.op === 'call') {
      const [name, args] = node.args;
      if (REGEX_FUNCTIONS.has(name)) return { kind: 'regex_not_allowed', message: `${name}(): ${REGEX_REFUSAL}`, offset: node.pos };
      if (!ALLOWED_FUNCTIONS.has(name)) {
        return { kind: 'function_not_allowed', message: `function ${name}() is not allowed; allowed functions: ${FUNCTION_LIST}`, offset: node.pos };
      }
      return literalRequired(name, args, node.pos) ?? each(args);
    }
    if (node.op !== 'rcall') return each(astChildren(node));

    const [name, receiver, args] = node.args;
    const offset = methodOffset(node, receiver, name);
    if (REGEX_FUNCTIONS.has(name)) return { kind: 'regex_not_allowed', message: `.${name}(): ${REGEX_REFUSAL}`, offset };
    if (!MACROS.has(name)) {
      if (!ALLOWED_METHODS.has(name)) {
        return { kind: 'function_not_allowed', message: `method .${name}() is not allowed; allowed methods: ${METHOD_LIST}`, offset };
      }
      return literalRequired(name, args, offset) ?? each([receiver, ...args]);
    }

    const [variable, ...body] = args;
    const arityOk = name === 'map' ? args.length === 2 || args.length === 3 : args.length === 2;
    if (!arityOk || variable?.op !== 'id') {
      const expected = name === 'map' ? 'a variable name and one or two expressions' : 'a variable name and an expression';
      return { kind: 'macro_arguments', message: `.${name}() takes ${expected}`, offset };
    }
    if (macroNesting >= limits.maxMacroNesting) {
      return {
        kind: 'macro_nesting',
        message: `.${name}() inside another macro is not allowed (limit ${limits.maxMacroNesting}): each level multiplies the work by a list's length; test membership with 'in' instead`,
        offset,
      };
    }
    if (containsMapMacro(receiver)) {
      // Each map step can grow every element (`x + x`), so a chain of them grows exponentially.
      return {
        kind: 'macro_nesting',
        message: `.${name}() cannot iterate over the result of .map(): chained maps can grow values exponentially; test the elements in one macro instead`,
        offset,
      };
    }
    return each([receiver]) ?? each(body, new Set(bound).add(variable.args), macroNesting + 1);
  };
  return visit(root, 1, new Set(), 0);
}

/** A method call's node starts at its receiver; point at the method name instead when it can be found. */
function methodOffset(node: ASTNode, receiver: ASTNode, name: string): number {
  const found = node.input.indexOf(name, receiver.end);
  return found >= 0 && found < node.end ? found : node.pos;
}

/** A call of LITERAL_ARGUMENT's whose argument is not a literal. */
function literalRequired(name: string, args: readonly ASTNode[], offset: number): TreeProblem | undefined {
  const message = LITERAL_ARGUMENT.get(name);
  if (message === undefined || (args.length === 1 && args[0]!.op === 'value')) return undefined;
  return { kind: 'literal_required', message, offset };
}
