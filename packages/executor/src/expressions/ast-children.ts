import type { ASTNode } from '@marcbachmann/cel-js';
import { MACROS } from './allowed-functions.js';

/** The sub-expressions of a parsed node, in source order (a call's name and a field's name are not nodes). */
export function astChildren(node: ASTNode): ASTNode[] {
  switch (node.op) {
    case 'value':
    case 'id':
      return [];
    case '.':
    case '.?':
      return [node.args[0]];
    case '!_':
    case '-_':
      return [node.args];
    case 'call':
      return node.args[1];
    case 'rcall':
      return [node.args[1], ...node.args[2]];
    case 'map':
      return node.args.flat();
    case 'list':
    case '?:':
    case '[]':
    case '[?]':
    case '&&':
    case '||':
    case '==':
    case '!=':
    case '<':
    case '<=':
    case '>':
    case '>=':
    case '+':
    case '-':
    case '*':
    case '/':
    case '%':
    case 'in':
      return [...node.args];
  }
}

/** Whether `map(…)` produces any part of this value, directly or through an index, a field or a literal. */
export function containsMapMacro(node: ASTNode): boolean {
  if (node.op === 'rcall' && node.args[0] === 'map') return true;
  return astChildren(node).some(containsMapMacro);
}

/**
 * How many macro calls (`exists`, `all`, `map`…) have a body that reads `variable` (the event): only such a body
 * can cost the event's size at every element. One that reads its element and literals alone is linear in all.
 */
export function countMacrosReading(node: ASTNode, variable: string): number {
  const own = node.op === 'rcall' && MACROS.has(node.args[0]) && node.args[2].slice(1).some((body) => reads(body, variable)) ? 1 : 0;
  return astChildren(node).reduce((count, child) => count + countMacrosReading(child, variable), own);
}

function reads(node: ASTNode, variable: string): boolean {
  return (node.op === 'id' && node.args === variable) || astChildren(node).some((child) => reads(child, variable));
}
