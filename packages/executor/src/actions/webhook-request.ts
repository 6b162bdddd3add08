import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';

export interface WebhookResponse {
  status: number;
  statusText: string;
  location: string | null;
  /** Up to `characters` of the body, trimmed; the rest is not read, and the connection is closed. */
  excerpt(characters: number): Promise<string>;
  /**
   * The body is not needed: it is read to its end in the background, so the connection can serve the next call,
   * unless it passes DISCARD_LIMIT_BYTES or DISCARD_LIMIT_MS, when the connection is closed instead.
   */
  discard(): void;
}

export interface WebhookAgents {
  http: HttpAgent;
  https: HttpsAgent;
}

/**
 * How much of a body nobody reads is drained, and for how long, to keep its connection for the next call. The
 * action's time limit no longer applies once it has returned: without these, a receiver that answers 200 and
 * never ends its body would hold a socket (and its file descriptor) for the life of the process.
 */
export const DISCARD_LIMIT_BYTES = 64 * 1024;
export const DISCARD_LIMIT_MS = 2_000;

/**
 * Kept connections of webhook calls are closed after 30 s idle, and at most 16 idle ones are kept per host: a URL
 * whose host an event chooses could otherwise leave a socket open for every host named, for as long as each
 * server keeps it, in the process that also streams and records. Connections in use need no cap of their own:
 * the workers' concurrency bounds them, and a cap counting idle sockets would make calls to a new host wait for
 * another host's idle socket to time out.
 */
export const WEBHOOK_CONNECTIONS = { idleMs: 30_000, maxIdlePerHost: 16 };

/**
 * Connections of webhook calls only, kept alive between calls. Give each address guard (allow-list) agents of
 * its own: a connection opened through one guard's lookup must not be reused by a call another guard checked.
 */
export function webhookAgents(limits = WEBHOOK_CONNECTIONS): WebhookAgents {
  const options = { keepAlive: true, timeout: limits.idleMs, maxFreeSockets: limits.maxIdlePerHost };
  return { http: new HttpAgent(options), https: new HttpsAgent(options) };
}

/**
 * One POST, through node:http(s) rather than fetch: the connection takes its addresses from `lookup`, so the
 * addresses checked are the addresses connected to. Redirects are not followed. `signal` ends the call, its
 * connection included, until the response's body is done with.
 */
export function postWebhook(
  url: URL,
  headers: Record<string, string>,
  body: string,
  options: { signal: AbortSignal; lookup: LookupFunction; agents: WebhookAgents },
): Promise<WebhookResponse> {
  const { signal, lookup } = options;
  signal.throwIfAborted();
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const agent = url.protocol === 'https:' ? options.agents.https : options.agents.http;
  return new Promise((resolve, reject) => {
    const request = send(url, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, agent, lookup });
    const abort = (): void => void request.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', abort, { once: true });
    const done = (): void => signal.removeEventListener('abort', abort);
    request.once('error', (error) => {
      done();
      reject(error);
    });
    request.once('response', (response: IncomingMessage) => {
      response.once('close', done);
      resolve({
        status: response.statusCode ?? 0,
        statusText: response.statusMessage ?? '',
        location: response.headers.location ?? null,
        excerpt: (characters) => excerptOf(response, characters),
        discard: () => discardBody(response),
      });
    });
    request.end(body);
  });
}

function discardBody(response: IncomingMessage): void {
  let bytes = 0;
  const tooLong = setTimeout(() => response.destroy(), DISCARD_LIMIT_MS);
  tooLong.unref();
  response.once('close', () => clearTimeout(tooLong));
  response.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > DISCARD_LIMIT_BYTES) response.destroy();
  });
}

async function excerptOf(response: IncomingMessage, characters: number): Promise<string> {
  response.setEncoding('utf8');
  let text = '';
  try {
    for await (const chunk of response) {
      text += chunk as string;
      if (text.length >= characters) break;
    }
  } catch {
    // A body cut short still gives the excerpt read so far.
  } finally {
    response.destroy();
  }
  return text.slice(0, characters).trim();
}
