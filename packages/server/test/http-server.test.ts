import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { startHttpServer } from '@walflow/server';
import { describe, expect, it } from 'vitest';

/** Sends one raw HTTP/1.1 request and returns the status line of the answer. */
function statusLine(port: number, target: string, host = 'localhost'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    socket.on('end', () => resolve(answer.split('\r\n')[0] ?? ''));
    socket.on('error', reject);
  });
}

describe('the HTTP server', () => {
  it('answers a request target that is no URL path with 400, and goes on serving', async () => {
    const server = await startHttpServer({ host: '127.0.0.1', port: 0, routes: { '/healthz': () => ({ status: 200, body: { status: 'ok' } }) } });
    try {
      expect(await statusLine(server.port, '//[')).toBe('HTTP/1.1 400 Bad Request');
      expect(await statusLine(server.port, 'http://a:b/')).toBe('HTTP/1.1 400 Bad Request');
      expect(await statusLine(server.port, '/healthz')).toBe('HTTP/1.1 200 OK');
    } finally {
      await server.close();
    }
  });

  it('marks its JSON answers not to be sniffed or cached', async () => {
    const server = await startHttpServer({ host: '127.0.0.1', port: 0, routes: { '/healthz': () => ({ status: 200, body: { status: 'ok' } }) } });
    try {
      for (const path of ['/healthz', '/nowhere']) {
        const response = await fetch(`http://127.0.0.1:${server.port}${path}`);
        expect(response.headers.get('x-content-type-options'), path).toBe('nosniff');
        expect(response.headers.get('cache-control'), path).toBe('no-store');
      }
    } finally {
      await server.close();
    }
  });

  it('bound to loopback, answers its routes only for a loopback name or an allowed one: a rebound DNS name cannot read them as same-origin', async () => {
    const routes = { '/metrics': () => ({ status: 200, body: 'walflow_events_total 1', contentType: 'text/plain' }) };
    const mounts = { '/console': (_request: IncomingMessage, response: ServerResponse) => Promise.resolve(void response.writeHead(200).end('console')) };
    const loopback = await startHttpServer({ host: '127.0.0.1', port: 0, routes, mounts, allowedHosts: ['Walflow.Example.Internal'] });
    try {
      const { port } = loopback;
      for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1.evil.example:${port}`, `192.0.2.1:${port}`, `[::2]:${port}`]) {
        expect(await statusLine(port, '/metrics', host), host).toBe('HTTP/1.1 421 Misdirected Request');
      }
      const loopbackNames = ['localhost', `localhost:${port}`, `LOCALHOST.:${port}`, `app.localhost:${port}`, `127.0.0.1:${port}`, `127.1.2.3:${port}`];
      const ipv6 = [`[::1]:${port}`, `[0:0:0:0:0:0:0:1]:${port}`, `[::ffff:7f00:1]:${port}`, `[::ffff:127.0.0.1]:${port}`];
      for (const host of [...loopbackNames, ...ipv6, `walflow.example.internal:${port}`, 'WALFLOW.example.internal.']) {
        expect(await statusLine(port, '/metrics', host), host).toBe('HTTP/1.1 200 OK');
      }
      // The console checks who calls it by itself: a proxy in front of it passes its own name through.
      expect(await statusLine(port, '/console', 'console.example.com')).toBe('HTTP/1.1 200 OK');
    } finally {
      await loopback.close();
    }
    // Bound to every address, the names it is reached by are the operator's to know...
    const everywhere = await startHttpServer({ host: '0.0.0.0', port: 0, routes });
    try {
      expect(await statusLine(everywhere.port, '/metrics', 'walflow.internal:8787')).toBe('HTTP/1.1 200 OK');
    } finally {
      await everywhere.close();
    }
    // ...unless the operator names them (a container whose port the host publishes on its loopback only).
    const named = await startHttpServer({ host: '0.0.0.0', port: 0, routes, allowedHosts: ['walflow'] });
    try {
      for (const host of [`walflow:${named.port}`, `127.0.0.1:${named.port}`, 'localhost']) expect(await statusLine(named.port, '/metrics', host), host).toBe('HTTP/1.1 200 OK');
      expect(await statusLine(named.port, '/metrics', 'evil.example')).toBe('HTTP/1.1 421 Misdirected Request');
    } finally {
      await named.close();
    }
  });

  it('tells a failed route\'s caller only that it failed, and its log what failed', async () => {
    const logged: { err: Error; path: string }[] = [];
    const server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      logger: { error: (entry: { err: Error; path: string }) => void logged.push(entry) },
      routes: { '/metrics': () => Promise.reject(new Error('connect ECONNREFUSED db.internal.example:5432')) },
    });
    try {
      const response = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      expect(response.status).toBe(500);
      const body = await response.text();
      expect(body).toContain('internal error');
      expect(body).not.toContain('db.internal');
      expect(logged.map(({ err, path }) => [path, err.message])).toEqual([['/metrics', 'connect ECONNREFUSED db.internal.example:5432']]);
    } finally {
      await server.close();
    }
  });

  it('closes a client that trickles its headers or its body', async () => {
    const mounts = { '/console': async (request: IncomingMessage, response: ServerResponse) => {
      await new Promise((resolve) => request.on('end', resolve).resume());
      response.writeHead(200).end('read');
    } };
    const server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      routes: { '/healthz': () => ({ status: 200, body: { status: 'ok' } }) },
      mounts,
      slowClientLimits: { headersMs: 300, requestMs: 900 },
    });
    try {
      const headers = await openSocket(server.port);
      headers.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n');
      const body = await openSocket(server.port);
      body.write('POST /console/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n');
      const trickle = setInterval(() => body.write('a'), 100);
      try {
        // Both are answered 408 and closed: neither holds its socket for Node's default five minutes.
        expect(await closedWith(headers)).toMatch(/^HTTP\/1\.1 408/);
        expect(await closedWith(body)).toMatch(/^HTTP\/1\.1 408/);
      } finally {
        clearInterval(trickle);
      }
      expect(await statusLine(server.port, '/healthz')).toBe('HTTP/1.1 200 OK');
    } finally {
      await server.close();
    }
  });
});

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', reject);
  });
}

/** What the server sent on a socket before it closed it. */
function closedWith(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(answer));
  });
}
