import type { EventEnvelope } from '@walflow/core';

const PLACEHOLDER = /\{\{\s*([^{}]+?)\s*\}\}/g;
const WHOLE_PLACEHOLDER = /^\{\{\s*([^{}]+?)\s*\}\}$/;
const PATH = /^event(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/** The values a template may read: the names match the events table and CEL (`event.tenantId`). */
export function templateScope(event: EventEnvelope): Record<string, unknown> {
  return {
    id: event.id,
    type: event.type,
    tenantId: event.tenantId,
    aggregateType: event.aggregateType,
    aggregateId: event.aggregateId,
    payload: event.payload,
    metadata: event.metadata,
    committedAt: event.committedAt,
  };
}

/**
 * Replaces `{{event.path}}` placeholders in every string of a JSON value. A string that is only a placeholder
 * takes the value itself (numbers stay numbers); inside text, values are written as text. Templates are data:
 * a path walks own properties only, nothing is evaluated.
 */
export function renderTemplate(value: unknown, event: EventEnvelope): unknown {
  const scope = { event: templateScope(event) };
  const render = (node: unknown): unknown => {
    if (typeof node === 'string') {
      const whole = WHOLE_PLACEHOLDER.exec(node);
      if (whole?.[1] !== undefined) return lookup(scope, whole[1]) ?? null;
      return node.replace(PLACEHOLDER, (_match, path: string) => asText(lookup(scope, path)));
    }
    if (Array.isArray(node)) return node.map(render);
    if (typeof node === 'object' && node !== null) {
      return Object.fromEntries(Object.entries(node).map(([key, child]) => [key, render(child)]));
    }
    return node;
  };
  return render(value);
}

function lookup(scope: Record<string, unknown>, path: string): unknown {
  if (!PATH.test(path)) return undefined;
  let current: unknown = scope;
  for (const key of path.split('.')) {
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function asText(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}
