import type { EventEnvelope } from '@walflow/core';
import { templateScope } from './event-scope.js';
import { renderText } from './render-mustache.js';

/** `{{event.path}}` alone, with any name Mustache looks up by its dots: `items.0`, `new-status`. */
const WHOLE_PLACEHOLDER = /^\{\{\s*(event(?:\.[^\s.{}]+)*)\s*\}\}$/;

/**
 * Renders the strings of a JSON value (an action's payload, data, key) as Mustache templates over `event`,
 * without HTML escaping. A string that is a single `{{event.path}}` takes the value itself, so numbers stay
 * numbers and objects stay objects. Templates are data: lookups walk own properties only, nothing runs.
 */
export function renderTemplate(value: unknown, event: EventEnvelope): unknown {
  const render = (node: unknown): unknown => {
    if (typeof node === 'string') {
      const whole = WHOLE_PLACEHOLDER.exec(node);
      if (whole?.[1] !== undefined) return lookup({ event: templateScope(event) }, whole[1]) ?? null;
      return renderText(node, event, { escape: 'none' });
    }
    if (Array.isArray(node)) return node.map(render);
    if (typeof node === 'object' && node !== null) {
      return Object.fromEntries(Object.entries(node).map(([key, child]) => [key, render(child)]));
    }
    return node;
  };
  return render(value);
}

/** Whether a template is one `{{event.path}}` and nothing else: its value is the whole field. */
export function isWholePlaceholder(template: string): boolean {
  return WHOLE_PLACEHOLDER.test(template);
}

/**
 * Whether a template that is one `{{event.path}}` finds that path in the event, a null there included (it renders
 * null either way). Any other template renders text, and counts as found.
 */
export function findsItsPath(template: string, event: EventEnvelope): boolean {
  const whole = WHOLE_PLACEHOLDER.exec(template);
  return whole?.[1] === undefined || lookup({ event: templateScope(event) }, whole[1]) !== undefined;
}

function lookup(scope: Record<string, unknown>, path: string): unknown {
  let current: unknown = scope;
  for (const key of path.split('.')) {
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}
