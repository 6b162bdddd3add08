import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { hostName, hostOfHeader, isLoopbackName } from './loopback-name.js';

export interface HttpServer {
  port: number;
  close(): Promise<void>;
}

/** A JSON body, or with `contentType` a string written as it is (the Prometheus text format). */
export interface RouteResponse {
  status: number;
  body: unknown;
  contentType?: string;
}

export type RouteHandler = () => Promise<RouteResponse> | RouteResponse;

/** Owns every request under its path prefix: any method, bodies, cookies, streamed responses. */
export type MountedHandler = (request: IncomingMessage, response: ServerResponse) => Promise<void>;

export interface HttpServerOptions {
  host: string;
  port: number;
  /** Exact paths answering GET and HEAD with JSON (or text): health, readiness, metrics. */
  routes: Record<string, RouteHandler>;
  /** Path prefixes (such as `/console`) handed to an application of their own. */
  mounts?: Record<string, MountedHandler>;
  /**
   * Host names (no port) that `routes` answer besides loopback ones (a local proxy's, a compose service's); any
   * given turns the Host check on, whatever the bound address.
   */
  allowedHosts?: readonly string[];
  /** Where a request that failed inside walflow is told; its caller gets only "internal error". */
  logger?: Pick<Logger, 'error'>;
  /** How long a client may take to send its headers, and its whole request; SLOW_CLIENT_LIMITS by default. */
  slowClientLimits?: SlowClientLimits;
}

export interface SlowClientLimits {
  headersMs: number;
  requestMs: number;
}

/**
 * The server shares its process with the replication stream and the workers: a client that trickles its request a
 * byte at a time must not hold its socket and memory for the five minutes Node allows by default. A form is a few
 * fields and a health probe one line, so ten seconds for headers and thirty for the whole request are plenty; the
 * console's live streams are responses, which these limits do not touch. No cap on connections: slow clients
 * holding every place would shut out the health probes, which an orchestrator answers by restarting walflow.
 */
export const SLOW_CLIENT_LIMITS: SlowClientLimits = { headersMs: 10_000, requestMs: 30_000 };

/** The process's HTTP server: small JSON routes for operations, plus mounted applications such as the console. */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const mounts = Object.entries(options.mounts ?? {});
  // Bound to loopback, or given the names it is reached by (a container bound to 0.0.0.0, its port published on the
  // host's loopback), the routes (which need no login) answer only requests addressed to a loopback name or an
  // allowed one. A web page whose own name an attacker re-points at 127.0.0.1 (DNS rebinding) would otherwise read
  // /health and /metrics as same-origin. Mounts check who calls themselves: the console's cookie and token are
  // never the rebound page's.
  const allowedHosts = new Set((options.allowedHosts ?? []).map(hostName));
  const checksHost = isLoopbackName(options.host) || allowedHosts.size > 0;
  const answers = (host: string | undefined): boolean =>
    !checksHost || host === undefined || isLoopbackName(hostOfHeader(host)) || allowedHosts.has(hostName(hostOfHeader(host)));
  const limits = options.slowClientLimits ?? SLOW_CLIENT_LIMITS;
  // Node looks for overdue requests only every connectionsCheckingInterval (30 s by default).
  const checkingMs = Math.min(1000, limits.headersMs);
  const server: Server = createServer({ headersTimeout: limits.headersMs, requestTimeout: limits.requestMs, connectionsCheckingInterval: checkingMs }, (request, response) => {
    const reply = (status: number, body: unknown, contentType?: string): void => {
      response.writeHead(status, { 'content-type': contentType ?? 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      response.end(contentType === undefined ? JSON.stringify(body) : String(body));
    };

    // Anything may arrive as the request target (`//[`, `http://a:b/`); a throw here would end the process.
    const path = pathOf(request.url);
    if (path === null) return reply(400, { error: 'the request target is not a URL path' });
    const failed = (error: unknown): void => {
      // A streamed response that already started cannot become an error page: end it.
      // What failed inside walflow (a driver's error names hosts, statements, constraints) goes to the log only:
      // these routes answer without a login.
      options.logger?.error({ err: error, path }, 'HTTP request failed');
      if (response.headersSent) response.destroy();
      else reply(500, { error: 'internal error: the walflow log says what failed' });
    };
    const mounted = mounts.find(([prefix]) => path === prefix || path.startsWith(`${prefix}/`));
    if (mounted) {
      mounted[1](request, response).catch(failed);
      return;
    }
    const route = options.routes[path];
    if (!route) return reply(404, { error: `no route ${path}` });
    if (!answers(request.headers.host)) {
      return reply(421, { error: `this server answers ${path} only for localhost, a loopback address or WALFLOW_HTTP_ALLOWED_HOSTS` });
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') return reply(405, { error: 'method not allowed' });
    Promise.resolve()
      .then(route)
      .then(({ status, body, contentType }) => reply(status, body, contentType))
      .catch(failed);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // Also ends open streams (the console's live event lists), which would hold close() forever.
        server.closeAllConnections();
      }),
  };
}

function pathOf(target: string | undefined): string | null {
  try {
    return new URL(target ?? '/', 'http://localhost').pathname;
  } catch {
    return null;
  }
}
