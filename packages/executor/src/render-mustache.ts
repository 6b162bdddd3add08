import { WalflowError, type EventEnvelope } from '@walflow/core';
import Mustache from 'mustache';
import { z } from 'zod';
import { templateScope } from './event-scope.js';

export type TemplateEscape = 'html' | 'none';

type Spans = ReturnType<typeof Mustache.parse>;

/** Passed on every call so a caller that changes `Mustache.tags` globally cannot change how ours parse. */
const TAGS: [string, string] = ['{{', '}}'];

/** Lookups walk the prototype chain (`in`); a prototype with no string keys leaves nothing but data to reach. */
const DATA_PROTOTYPE: object = Object.freeze(
  Object.create(null, {
    [Symbol.toPrimitive]: {
      value(this: unknown): string {
        return JSON.stringify(this) ?? '';
      },
    },
  }) as object,
);

const HTML_ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '/': '&#x2F;',
  '`': '&#x60;',
  '=': '&#x3D;',
};

/**
 * Renders a logic-less Mustache template over `{ event }`. `{{x}}` is HTML-escaped unless `escape` is 'none'
 * (mail subjects, plain text, header values); `{{{x}}}` is always raw. Objects render as JSON. Partials are
 * refused; a malformed template fails with 'workflow_invalid'.
 */
export function renderText(template: string, event: EventEnvelope, options: { escape?: TemplateEscape } = {}): string {
  return renderWith(template, eventView(event), options.escape ?? 'html');
}

/** A string holding a template, checked when a workflow is applied rather than when it first runs. */
export const mustacheTemplate = z.string().superRefine((value, context) => {
  const problem = templateProblem(value);
  if (problem !== undefined) context.addIssue({ code: 'custom', message: problem });
});

/** Why a template cannot be rendered, or undefined when it can: lets schemas reject it when a workflow is applied. */
export function templateProblem(template: string): string | undefined {
  let spans: Spans;
  try {
    spans = Mustache.parse(template, TAGS);
  } catch (error) {
    return `template is malformed: ${error instanceof Error ? error.message : String(error)}`;
  }
  return hasPartial(spans) ? 'template partials ({{> name}}) are not supported' : undefined;
}

function renderWith(template: string, view: unknown, escape: TemplateEscape): string {
  const problem = templateProblem(template);
  if (problem !== undefined) throw new WalflowError('workflow_invalid', problem);
  const partials = Object.create(null) as Record<string, string>;
  return Mustache.render(template, view, partials, { tags: TAGS, escape: escape === 'html' ? escapeHtml : asText });
}

function hasPartial(spans: Spans): boolean {
  return spans.some((span) => span[0] === '>' || (Array.isArray(span[4]) && hasPartial(span[4])));
}

function eventView(event: EventEnvelope): unknown {
  return toData({ event: templateScope(event) });
}

/** A copy of the scope made only of primitives and prototype-less containers: no method is reachable by name. */
function toData(value: unknown): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return Object.setPrototypeOf(value.map(toData), DATA_PROTOTYPE) as unknown;
  if (typeof value === 'object') {
    const copy = Object.create(DATA_PROTOTYPE) as Record<string, unknown>;
    for (const [key, child] of Object.entries(value)) {
      const data = toData(child);
      if (data !== undefined) copy[key] = data;
    }
    return copy;
  }
  return undefined;
}

function asText(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'object':
      return value === null ? '' : (JSON.stringify(value) ?? '');
    case 'undefined':
    case 'function':
    case 'symbol':
      return '';
  }
}

function escapeHtml(value: unknown): string {
  return asText(value).replace(/[&<>"'`=/]/g, (character) => HTML_ENTITIES[character] ?? character);
}
