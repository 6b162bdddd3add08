import { WalflowError, type EventEnvelope } from '@walflow/core';
import Mustache from 'mustache';
import { z } from 'zod';
import { EVENT_VARIABLE, templateScope } from './event-scope.js';
import { templateNameProblem } from './template-names.js';

/**
 * What `{{x}}` does to a value: 'html' escapes it for HTML, 'uri' percent-encodes it as one URL component (so a
 * value can neither move a URL to another host nor add a path or query of its own), 'address' refuses a value
 * that holds the syntax of an address list (so a value cannot add a recipient), 'none' leaves it as it is.
 */
export type TemplateEscape = 'html' | 'uri' | 'address' | 'none';

/** What separates, quotes, groups or comments addresses in a list (RFC 5322), and line breaks. */
const ADDRESS_LIST_SYNTAX = /[,;<>"():\\[\]\r\n]/;

type Spans = ReturnType<typeof Mustache.parse>;

/** Passed on every call so a caller that changes `Mustache.tags` globally cannot change how ours parse. */
const TAGS: [string, string] = ['{{', '}}'];

/**
 * What one rendering may cost. Sections nested over lists multiply (three levels over a list of 100 items are a
 * million steps), and a rendering blocks the whole process, where no action timeout can stop it. A mail or a
 * payload needs a small part of either; together they hold a rendering to a few hundred milliseconds here.
 */
export const MAX_RENDER_STEPS = 100_000;
export const MAX_RENDERED_CHARACTERS = 10 * 1024 * 1024;

/**
 * A Mustache writer that counts its steps (the tokens it renders, and at least one for every time it renders a
 * section's body, empty or not) and the characters it writes, and stops beyond either bound.
 */
class BoundedWriter extends Mustache.Writer {
  private steps = 0;
  private characters = 0;

  renderBounded(template: string, view: unknown, escape: (value: unknown) => string): string {
    this.steps = 0;
    this.characters = 0;
    return this.render(template, new EventRootedContext(view), Object.create(null) as Record<string, string>, { tags: TAGS, escape });
  }

  override renderTokens(...args: Parameters<Mustache.Writer['renderTokens']>): string {
    this.steps += Math.max(1, args[0].length);
    if (this.steps > MAX_RENDER_STEPS) {
      throw new WalflowError('action_failed', `template needs more than ${MAX_RENDER_STEPS.toLocaleString('en')} rendering steps: sections nested over lists this long multiply`);
    }
    return super.renderTokens(...args);
  }

  override rawValue(...args: Parameters<Mustache.Writer['rawValue']>): string {
    return this.counted(super.rawValue(...args));
  }

  override escapedValue(...args: Parameters<Mustache.Writer['escapedValue']>): string {
    return this.counted(super.escapedValue(...args));
  }

  override unescapedValue(...args: Parameters<Mustache.Writer['unescapedValue']>): string {
    // The text Mustache would append: objects and lists as JSON, as DATA_PROTOTYPE makes them.
    const value: unknown = super.unescapedValue(...args);
    return this.counted(value === undefined ? value : asText(value));
  }

  /** Mustache appends nothing for `undefined` (a missing value). */
  private counted(text: string | undefined): string {
    this.characters += text?.length ?? 0;
    if (this.characters > MAX_RENDERED_CHARACTERS) {
      throw new WalflowError('action_failed', `template renders more than ${MAX_RENDERED_CHARACTERS.toLocaleString('en')} characters`);
    }
    return text as string;
  }
}

const writer = new BoundedWriter();

/**
 * A Mustache context in which `event` and `event.…` always name the event, also inside a section over a list of
 * the payload's: Mustache looks a name up in the section's item first, and an item of `{"event": {"tenantId":
 * "other"}}` would otherwise make `{{event.tenantId}}` render "other".
 */
class EventRootedContext extends Mustache.Context {
  override push(view: unknown): Mustache.Context {
    return new EventRootedContext(view, this);
  }

  override lookup(name: string): unknown {
    if (this.parent === undefined || (name !== EVENT_VARIABLE && !name.startsWith(`${EVENT_VARIABLE}.`))) return super.lookup(name);
    return this.parent.lookup(name);
  }
}


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
 * Renders a logic-less Mustache template over `{ event }`. `{{x}}` is HTML-escaped unless `escape` says otherwise
 * ('none' for mail subjects, plain text and header values, 'uri' for URLs); `{{{x}}}` is always raw. Objects render as JSON. Partials are
 * refused; a malformed template fails with 'workflow_invalid', one that costs too much to render (see
 * MAX_RENDER_STEPS) with 'action_failed'.
 */
export function renderText(template: string, event: EventEnvelope, options: { escape?: TemplateEscape } = {}): string {
  return renderWith(template, eventView(event), options.escape ?? 'html');
}

/** A string holding a template, checked when a workflow is applied rather than when it first runs. */
export const mustacheTemplate = z.string().superRefine((value, context) => {
  const problem = appliedTemplateProblem(value);
  if (problem !== undefined) context.addIssue({ code: 'custom', message: problem });
});

/** JSON whose every string is a template (an action's payload or data); each is checked when a workflow is applied. */
export const templatedJson = z.json().superRefine((value, context) => {
  const visit = (node: unknown, path: (string | number)[]): void => {
    if (typeof node === 'string') {
      const problem = appliedTemplateProblem(node);
      if (problem !== undefined) context.addIssue({ code: 'custom', message: problem, path });
    } else if (Array.isArray(node)) {
      node.forEach((child, index) => visit(child, [...path, index]));
    } else if (typeof node === 'object' && node !== null) {
      for (const [key, child] of Object.entries(node)) visit(child, [...path, key]);
    }
  };
  visit(value, []);
});

/** Why a template cannot be rendered, or undefined when it can: lets schemas reject it when a workflow is applied. */
export function templateProblem(template: string): string | undefined {
  let spans: Spans;
  try {
    spans = writer.parse(template, TAGS) as Spans;
  } catch (error) {
    return `template is malformed: ${error instanceof Error ? error.message : String(error)}`;
  }
  return hasPartial(spans) ? 'template partials ({{> name}}) are not supported' : undefined;
}

/** Why a template is refused when a workflow is applied: it cannot be rendered, or it names no field of the event. */
function appliedTemplateProblem(template: string): string | undefined {
  return templateProblem(template) ?? templateNameProblem(writer.parse(template, TAGS) as Spans);
}

function renderWith(template: string, view: unknown, escape: TemplateEscape): string {
  const problem = templateProblem(template);
  if (problem !== undefined) throw new WalflowError('workflow_invalid', problem);
  return writer.renderBounded(template, view, ESCAPES[escape]);
}

function hasPartial(spans: Spans): boolean {
  return spans.some((span) => span[0] === '>' || (Array.isArray(span[4]) && hasPartial(span[4])));
}

function eventView(event: EventEnvelope): unknown {
  return toData({ [EVENT_VARIABLE]: templateScope(event) });
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

const ESCAPES: Record<TemplateEscape, (value: unknown) => string> = {
  html: escapeHtml,
  uri: (value) => {
    const text = asText(value);
    // Percent-encoding leaves dot segments as they are, and a URL resolves them: `/tenants/../hook` is `/hook`.
    if (text === '.' || text === '..') throw new WalflowError('action_failed', `the value ${JSON.stringify(text)} would move the URL up its path`);
    return encodeURIComponent(text);
  },
  address: (value) => {
    const text = asText(value);
    if (ADDRESS_LIST_SYNTAX.test(text)) {
      throw new WalflowError('action_failed', `the value ${JSON.stringify(text)} holds address list syntax (, ; < > " ( ) : \\ [ ] or a line break), which could add recipients`);
    }
    // `{{user}}@corp.example` with `attacker@evil.example x` would read as attacker@evil.example, named x@corp.example.
    if (text.includes('@') && /\s/.test(text)) {
      throw new WalflowError('action_failed', `the value ${JSON.stringify(text)} holds an @ and a space, which could make it the address`);
    }
    return text;
  },
  none: asText,
};
