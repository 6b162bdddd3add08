import type Mustache from 'mustache';
import { EVENT_FIELDS, EVENT_VARIABLE } from './event-scope.js';

type Spans = ReturnType<typeof Mustache.parse>;

/** The spans that name a value: {{x}}, {{{x}}} and {{&x}}, sections and inverted sections. */
const NAMED_SPANS = new Set(['name', '&', '#', '^']);
/** `event`, `event.<field>` and below it, or `.`: the whole view. */
const EVENT_NAME = new RegExp(`^(\\.|${EVENT_VARIABLE}(\\.(${EVENT_FIELDS.join('|')})(\\..+)?)?)$`);

let applying = false;

/**
 * Runs `parse` (a workflow's validation) with the checks an apply makes and a read of a stored workflow does not: a
 * workflow accepted before such a check came is read as it was accepted, and refused only when applied again.
 */
export function asApplied<T>(parse: () => T): T {
  const outer = applying;
  applying = true;
  try {
    return parse();
  } finally {
    applying = outer;
  }
}

/**
 * While asApplied: a name looked up in the view's root that is no field of the event (`{{payload.name}}`,
 * `{{event.aggregateid}}`), which would render as nothing at every run. That is any name outside every section, and
 * inside an inverted one, which looks names up where it stands; inside a section a name may be one of its value.
 */
export function templateNameProblem(spans: Spans): string | undefined {
  if (!applying) return undefined;
  const unknown = rootName(spans);
  if (unknown === undefined) return undefined;
  const fields = EVENT_FIELDS.map((field) => `${EVENT_VARIABLE}.${field}`).join(', ');
  return `template names ${unknown}, which is no field of the event: names start with one of ${fields}`;
}

function rootName(spans: Spans): string | undefined {
  for (const span of spans) {
    const [kind, name] = span;
    if (NAMED_SPANS.has(kind) && !EVENT_NAME.test(name.trim())) return name;
    if (kind === '^' && Array.isArray(span[4])) {
      const inner = rootName(span[4]);
      if (inner !== undefined) return inner;
    }
  }
  return undefined;
}
