import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SafeHtml } from './html.js';

/** Form bodies are a few fields: anything larger is refused before it is read to the end. */
const FORM_LIMIT_BYTES = 64 * 1024;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Sent with the error's page (Retry-After, say). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** A request's cookies by name, and the names it sent more than once. */
export interface RequestCookies {
  /** Each name sent once. A name sent twice is left out: see `repeated`. */
  values: Map<string, string>;
  /**
   * Names sent more than once. A browser sends a cookie that a sibling domain set (Domain=example.com) beside
   * the console's own, and which comes last is the browser's choice, so neither can be taken for ours.
   */
  repeated: Set<string>;
}

export function parseCookies(header: string | undefined): RequestCookies {
  const values = new Map<string, string>();
  const repeated = new Set<string>();
  for (const part of (header ?? '').split(';')) {
    const separator = part.indexOf('=');
    if (separator < 1) continue;
    const name = part.slice(0, separator).trim();
    if (values.has(name)) repeated.add(name);
    try {
      values.set(name, decodeURIComponent(part.slice(separator + 1).trim()));
    } catch {
      // A malformed cookie of someone else's is not ours to judge.
    }
  }
  for (const name of repeated) values.delete(name);
  return { values, repeated };
}

/** An `application/x-www-form-urlencoded` body: what the console's forms post. */
export async function readForm(request: IncomingMessage): Promise<URLSearchParams> {
  const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new HttpError(415, 'forms must be posted as application/x-www-form-urlencoded');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > FORM_LIMIT_BYTES) throw new HttpError(413, `form larger than ${FORM_LIMIT_BYTES} bytes`);
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * Why a state-changing request looks cross-site, or undefined. Browsers say where a request comes from in
 * Sec-Fetch-Site (same-origin is the only acceptable answer), which no page can forge; only a browser too old to
 * send it is judged by Origin, whose host must be ours. The browser's word is taken first because a TLS proxy in
 * front of the console may rewrite Host, so that Origin (the public address) never matches it. Clients that send
 * neither (curl, scripts) are judged by their credentials alone: a bearer token, or a session whose form carries
 * its CSRF token.
 */
export function crossSiteReason(request: IncomingMessage): string | undefined {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin' ? undefined : `the request comes from another site (Sec-Fetch-Site: ${site})`;
  const origin = request.headers.origin;
  if (origin === undefined) return undefined;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return `the request's Origin is not ours (${origin})`;
  }
  return host === request.headers.host ? undefined : `the request's Origin is not ours (${origin})`;
}

/**
 * Sends a page with the headers every console response carries: no caching, no framing, no sniffing, and a
 * content security policy under which only the page's own nonce-bearing style and script run.
 */
export function sendPage(response: ServerResponse, status: number, page: SafeHtml, nonce: string, headers: Record<string, string | string[]> = {}): void {
  response.writeHead(status, { ...securityHeaders(nonce), 'content-type': 'text/html; charset=utf-8', ...headers });
  response.end(page.text);
}

export function redirect(response: ServerResponse, location: string, headers: Record<string, string | string[]> = {}): void {
  response.writeHead(303, { ...securityHeaders(null), location, ...headers });
  response.end();
}

/** Headers of every console response; a page (with its nonce) also gets the content security policy. */
export function securityHeaders(nonce: string | null): Record<string, string> {
  return {
    'cache-control': 'no-store',
    ...(nonce === null
      ? {}
      : {
          'content-security-policy':
            `default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; img-src 'self' data:; connect-src 'self'; ` +
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        }),
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'same-origin',
  };
}
