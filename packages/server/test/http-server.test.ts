import { connect } from 'node:net';
import { startHttpServer } from '@walflow/server';
import { describe, expect, it } from 'vitest';

/** Sends one raw HTTP/1.1 request and returns the status line of the answer. */
function statusLine(port: number, target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(`GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`));
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
});
