import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { bounceNotificationSchema, recordBounce } from './email-bounces.js';
import type { CrmDatabase } from './schema.js';

export const BOUNCE_PATH = '/webhooks/email/bounces';
/** A bounce notification is a few hundred bytes; anything far larger is not one. */
const MAX_BODY_BYTES = 64 * 1024;
const MAX_DRAINED_BYTES = 64 * MAX_BODY_BYTES;

export interface BounceWebhook {
  url: string;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The inbound endpoint an email provider posts bounces to: `POST /webhooks/email/bounces` with one JSON bounce
 * notification (see email-bounces.ts). 202 with the event id; 400 naming every invalid field; 404, 405, 413; 500
 * when the database cannot record it, with the reason in the log only: the caller is not authenticated.
 * It has no authentication: bind it to a private address, or verify the provider's signature in front of it.
 */
export async function startBounceWebhook(options: { db: Kysely<CrmDatabase>; logger: Logger; host?: string; port?: number }): Promise<BounceWebhook> {
  const server = createServer((request, response) => {
    handle(request, options.db).then(
      (eventId) => reply(response, 202, { eventId }),
      (error: unknown) => {
        if (error instanceof HttpError) return reply(response, error.status, { error: error.message });
        options.logger.error({ err: error }, 'a bounce notification could not be recorded');
        reply(response, 500, { error: 'the bounce could not be recorded; send it again later' });
      },
    );
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}${BOUNCE_PATH}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(request: IncomingMessage, db: Kysely<CrmDatabase>): Promise<string> {
  const path = new URL(request.url ?? '/', 'http://localhost').pathname;
  if (path !== BOUNCE_PATH) throw new HttpError(404, `no route ${path}; bounces go to POST ${BOUNCE_PATH}`);
  if (request.method !== 'POST') throw new HttpError(405, `${request.method ?? 'this method'} is not allowed; use POST`);
  let body: unknown;
  try {
    body = JSON.parse(await readBody(request));
  } catch (error) {
    if (error instanceof HttpError) throw error;
    throw new HttpError(400, `the body is not JSON: ${(error as Error).message}`);
  }
  const parsed = bounceNotificationSchema.safeParse(body);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`);
    throw new HttpError(400, `invalid bounce notification: ${issues.join('; ')}`);
  }
  return recordBounce(db, parsed.data);
}

/**
 * The body, or 413 once it is larger than MAX_BODY_BYTES. A body too large is still read to its end, and dropped:
 * leaving a request half read closes its connection, and the client, still sending, got a reset, not the 413. Up
 * to MAX_DRAINED_BYTES: beyond, the connection is closed, as a sender that does not stop deserves.
 */
function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const tooLarge = (): HttpError => new HttpError(413, `the body is larger than ${MAX_BODY_BYTES} bytes`);
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      else chunks.length = 0;
      if (size > MAX_DRAINED_BYTES) {
        request.destroy();
        reject(tooLarge());
      }
    });
    request.once('end', () => (size > MAX_BODY_BYTES ? reject(tooLarge()) : resolve(Buffer.concat(chunks).toString('utf8'))));
    request.once('error', reject);
  });
}

function reply(response: ServerResponse, status: number, body: unknown): void {
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
  if (status === 405) headers.allow = 'POST';
  response.writeHead(status, headers).end(JSON.stringify(body));
}
