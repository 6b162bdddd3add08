import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

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

/** A small JSON HTTP server for health and operations endpoints (GET only), plus text bodies such as /metrics. */
export async function startHttpServer(options: { host: string; port: number; routes: Record<string, RouteHandler> }): Promise<HttpServer> {
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const route = options.routes[path];
    const reply = (status: number, body: unknown, contentType?: string): void => {
      response.writeHead(status, { 'content-type': contentType ?? 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      response.end(contentType === undefined ? JSON.stringify(body) : String(body));
    };
    if (!route) return reply(404, { error: `no route ${path}` });
    if (request.method !== 'GET' && request.method !== 'HEAD') return reply(405, { error: 'method not allowed' });
    Promise.resolve()
      .then(route)
      .then(({ status, body, contentType }) => reply(status, body, contentType))
      .catch((error: unknown) => reply(500, { error: error instanceof Error ? error.message : String(error) }));
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
        server.closeAllConnections();
      }),
  };
}
