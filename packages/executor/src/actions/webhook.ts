import { isWalflowError, toCloudEvent, WalflowError, type EventEnvelope, type StructuredCloudEvent } from '@walflow/core';
import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { mustacheTemplate, renderText, templatedJson } from '../render-mustache.js';
import { renderTemplate } from '../template.js';
import { assertPublicDestination, guardedLookup } from './address-guard.js';
import type { ActionRuntime, ExternalAction, ExternalActionContext } from './external-action.js';
import { postWebhook, webhookAgents, type WebhookAgents, type WebhookResponse } from './webhook-request.js';

/** Set by walflow on every request: a workflow overriding them would break the signature or the framing. */
const RESERVED_HEADERS = new Set([
  'content-type',
  'content-length',
  'content-encoding',
  'transfer-encoding',
  'connection',
  'host',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
]);

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Names are checked here rather than as the record's key schema, whose errors zod reduces to "Invalid key". */
const headersSchema = z
  .record(z.string(), z.union([mustacheTemplate, z.strictObject({ secret: z.string().min(1) })]))
  .superRefine((value, context) => {
    for (const name of Object.keys(value)) {
      if (!HEADER_NAME.test(name)) context.addIssue({ code: 'custom', message: 'must be an HTTP header name', path: [name] });
      else if (RESERVED_HEADERS.has(name.toLowerCase())) {
        context.addIssue({ code: 'custom', message: 'is set by walflow and cannot be overridden', path: [name] });
      }
    }
  });

export const webhookActionSchema = z
  .strictObject({
    type: z.literal('webhook'),
    /** http or https; may be a template. Private, loopback and link-local hosts need the allow-list. */
    url: mustacheTemplate.min(1),
    /** A template, or `{ "secret": "NAME" }` to take the value from the process's secrets. */
    headers: headersSchema.optional(),
    /** The CloudEvent's data, every string templated; defaults to the event's payload. */
    data: templatedJson.optional(),
    /** The CloudEvent's type; defaults to the event's type. */
    cloudEventType: z.string().min(1).max(200).optional(),
  })
  .superRefine((action, context) => {
    const origin = literalOrigin(action.url);
    if (origin !== null) {
      // What the workflow writes itself is checked now, not refused at every run until the workflow pauses.
      try {
        parseWebhookUrl(origin);
      } catch (error) {
        // Naming the URL as written, not the part of it checked.
        context.addIssue({ code: 'custom', message: (error as Error).message.replace(JSON.stringify(origin), JSON.stringify(action.url)), path: ['url'] });
      }
      return;
    }
    // A secret goes only where the workflow itself sends it: were the host an event's to choose, any writer of
    // an event could have the secret sent to a server of theirs.
    for (const [name, value] of Object.entries(action.headers ?? {})) {
      if (typeof value === 'string') continue;
      context.addIssue({
        code: 'custom',
        message: `takes secret ${value.secret}, but the URL's scheme, host or port come from the event: a secret is only sent to a host the URL names itself`,
        path: ['headers', name],
      });
    }
  });

/**
 * The scheme, credentials, host and port a URL template writes itself, with no placeholder before its path, or null
 * when an event's values may make them.
 */
function literalOrigin(template: string): string | null {
  return /^\s*[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/\\?#{}]+(?=[/\\?#]|$)/.exec(template)?.[0] ?? null;
}

export type WebhookAction = z.output<typeof webhookActionSchema>;

const RESPONSE_EXCERPT_CHARS = 500;

/** One pair of agents per runtime: its allow-list and resolver are the guard every pooled connection passed. */
const AGENTS = new WeakMap<ActionRuntime, WebhookAgents>();

function agentsOf(runtime: ActionRuntime): WebhookAgents {
  let agents = AGENTS.get(runtime);
  if (agents === undefined) AGENTS.set(runtime, (agents = webhookAgents()));
  return agents;
}

/**
 * POSTs the event as a structured CloudEvent, signed per Standard Webhooks. `webhook-id` is the idempotency
 * key, the same on every retry, so the receiver can deduplicate. Redirects are not followed: the target of a
 * redirect never passed the address guard.
 */
export const webhookAction: ExternalAction<WebhookAction> = {
  async execute(action, context) {
    const { event, runtime, signal } = context;
    const key = signingKey(runtime.webhookSigningSecret);
    const url = parseWebhookUrl(renderUrl(action.url, event));
    const headers = resolveHeaders(action.headers ?? {}, event, runtime.secrets);
    await assertPublicDestination(url, runtime.webhookAllowHosts, { resolve: runtime.resolveHost });

    const body = JSON.stringify(cloudEvent(action, context));
    const id = context.idempotencyKey;
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');

    let response: WebhookResponse;
    try {
      response = await postWebhook(
        url,
        { ...headers, 'content-type': 'application/cloudevents+json', 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` },
        body,
        { signal, lookup: guardedLookup(runtime.webhookAllowHosts, { resolve: runtime.resolveHost }), agents: agentsOf(runtime) },
      );
    } catch (error) {
      if (signal.aborted) throw new WalflowError('action_failed', `webhook to ${url.href} ${abortText(signal)}`, { cause: error });
      // The address guard refusing the addresses the connection was given (a name that resolved differently).
      if (isWalflowError(error)) throw error;
      throw new WalflowError('action_failed', `webhook to ${url.href} failed: ${connectionFailure(error)}`, { cause: error });
    }

    if (response.status >= 300 && response.status < 400) {
      response.discard();
      const { location } = response;
      throw new WalflowError(
        'action_failed',
        `webhook to ${url.href} answered ${response.status} redirecting${location === null ? '' : ` to ${location}`}; redirects are not followed`,
        { details: { status: response.status } },
      );
    }
    if (response.status < 200 || response.status >= 300) {
      const excerpt = await response.excerpt(RESPONSE_EXCERPT_CHARS);
      throw new WalflowError(
        'action_failed',
        `webhook to ${url.href} answered ${response.status}${response.statusText === '' ? '' : ` ${response.statusText}`}${excerpt === '' ? '' : `: ${excerpt}`}`,
        { details: { status: response.status } },
      );
    }
    response.discard();
    return { status: response.status, url: url.href };
  },
};

/** The HMAC key: the base64 part of `whsec_…` (a bare base64 secret is accepted too, as the reference libraries do). */
function signingKey(secret: string | undefined): Buffer {
  if (secret === undefined || secret === '') {
    throw new WalflowError('action_failed', 'webhook cannot run: no webhook signing secret is configured (whsec_…)');
  }
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
    throw new WalflowError('action_failed', 'webhook signing secret is not valid: expected whsec_ followed by base64');
  }
  return Buffer.from(encoded, 'base64');
}

/** `{{x}}` is one URL component, percent-encoded; `{{{x}}}` (a whole URL from the event, say) is taken as it is. */
function renderUrl(template: string, event: EventEnvelope): string {
  let rendered: string;
  try {
    rendered = renderText(template, event, { escape: 'uri' });
  } catch (error) {
    throw isWalflowError(error, 'action_failed') ? new WalflowError('action_failed', `webhook URL: ${error.message}`) : error;
  }
  // No value is `.` or `..` (the escape refuses them), but values beside the template's own text can still make
  // such a segment (`.{{x}}.` with x empty), which the URL resolves: the call would move along its path. Not a
  // segment the template writes itself, nor one in a value taken whole (`{{{url}}}`, the event's own URL).
  if (!hasRawPlaceholder(template) && !hasDotSegment(template.replace(PLACEHOLDER, 'x')) && hasDotSegment(rendered)) {
    throw new WalflowError('action_failed', `webhook URL: its path holds a "." or ".." segment once rendered (${JSON.stringify(rendered)}), which would move the call along its path`);
  }
  return rendered;
}

/** A Mustache tag: `{{x}}`, `{{{x}}}`, `{{&x}}`. */
const PLACEHOLDER = /\{\{\{?[^}]*\}?\}\}/g;

/** Whether a template takes a value whole, unescaped: `{{{x}}}` or `{{&x}}`. */
function hasRawPlaceholder(template: string): boolean {
  return /\{\{\{|\{\{\s*&/.test(template);
}

/**
 * Whether the path of a URL, as written, has a segment the URL parser resolves: `.`, `..`, or the same
 * percent-encoded; for http(s) a backslash separates segments as a slash does.
 */
function hasDotSegment(url: string): boolean {
  const path = /^[A-Za-z][A-Za-z0-9+.-]*:[/\\]{2}[^/\\?#]*([^?#]*)/.exec(url.trim())?.[1] ?? '';
  return path.split(/[/\\]/).some((segment) => /^(?:\.|%2e){1,2}$/i.test(segment));
}

function parseWebhookUrl(rendered: string): URL {
  let url: URL;
  try {
    url = new URL(rendered.trim());
  } catch {
    throw new WalflowError('action_failed', `webhook URL is not a valid URL: ${JSON.stringify(rendered)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new WalflowError('action_failed', `webhook URL must use http or https, not ${url.protocol.replace(/:$/, '')}`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new WalflowError('action_failed', 'webhook URL must not contain credentials; send them in a header from a secret');
  }
  return url;
}

function resolveHeaders(
  headers: Record<string, string | { secret: string }>,
  event: EventEnvelope,
  secrets: ReadonlyMap<string, string>,
): Record<string, string> {
  const resolved: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    let text: string;
    if (typeof value === 'string') {
      text = renderText(value, event, { escape: 'none' });
    } else {
      const secret = secrets.get(value.secret);
      if (secret === undefined) {
        throw new WalflowError('action_failed', `webhook header ${name} needs secret ${value.secret}, which is not configured`);
      }
      text = secret;
    }
    // Checked here so the error names the header; node:http's own error could echo the value.
    if (/[\0\r\n]/.test(text)) {
      throw new WalflowError('action_failed', `webhook header ${name} has a value with a line break or NUL, which HTTP cannot carry`);
    }
    resolved[name] = text;
  }
  return resolved;
}

function cloudEvent(action: WebhookAction, { event, workflow }: ExternalActionContext): StructuredCloudEvent {
  return toCloudEvent(event, {
    source: `walflow/${encodeURIComponent(workflow.tenantId)}/${encodeURIComponent(workflow.name)}`,
    type: action.cloudEventType,
    data: action.data === undefined ? undefined : renderTemplate(action.data, event),
  });
}

function abortText(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return reason instanceof Error && reason.name === 'TimeoutError' ? 'timed out' : 'was aborted';
}

/**
 * Why a call failed. Node tries each address of a host in turn, and when all fail reports an AggregateError with
 * no message of its own: its errors say why.
 */
function connectionFailure(error: unknown): string {
  if (error instanceof AggregateError && error.message === '') return error.errors.map((each) => (each instanceof Error ? each.message : String(each))).join('; ');
  return error instanceof Error ? error.message : String(error);
}
