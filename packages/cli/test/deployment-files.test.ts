import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { createProgram } from '../src/program.js';

// docker-compose.yml cannot run on machines without a Docker engine; this checks what can be checked without one.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const read = (path: string) => readFileSync(`${root}${path}`, 'utf8');

const service = z.object({
  build: z.string().optional(),
  command: z.array(z.string()).optional(),
  environment: z.record(z.string(), z.string()).optional(),
  depends_on: z.record(z.string(), z.object({ condition: z.enum(['service_started', 'service_healthy', 'service_completed_successfully']) })).optional(),
  healthcheck: z.object({ test: z.array(z.string()) }).optional(),
  ports: z.array(z.string()).optional(),
});
const compose = z.object({ services: z.record(z.string(), service) });

describe('docker-compose.yml', () => {
  const file = compose.parse(parse(read('docker-compose.yml'), { merge: true }));
  const { postgres, migrate, walflow } = file.services;

  it('builds PostgreSQL with wal2json and logical decoding from db/', () => {
    expect(postgres?.build).toBe('./db');
    const dockerfile = read('db/Dockerfile');
    expect(dockerfile).toMatch(/postgresql-15-wal2json/);
    expect(dockerfile).toMatch(/wal_level=logical/);
  });

  it('migrates once PostgreSQL is healthy, and starts walflow after a successful migration', () => {
    expect(migrate).toMatchObject({ build: '.', command: ['migrate'], depends_on: { postgres: { condition: 'service_healthy' } } });
    expect(walflow).toMatchObject({ build: '.', command: ['start'], depends_on: { migrate: { condition: 'service_completed_successfully' } } });
    const commands = createProgram().commands.map((command) => command.name());
    expect(commands).toEqual(expect.arrayContaining(['migrate', 'start']));
    for (const name of ['migrate', 'walflow']) {
      expect(file.services[name]?.environment?.DATABASE_URL).toBe('postgres://postgres:walflow@postgres:5432/walflow');
    }
  });

  it('checks walflow health on /readyz at the port it configures', () => {
    const port = walflow?.environment?.WALFLOW_HTTP_PORT;
    expect(walflow?.healthcheck?.test.join(' ')).toContain(`http://127.0.0.1:${port}/readyz`);
    expect(walflow?.environment?.WALFLOW_HTTP_HOST).toBe('0.0.0.0');
  });

  it("publishes PostgreSQL and walflow's unauthenticated HTTP routes on the host's loopback only", () => {
    for (const name of ['postgres', 'walflow']) {
      const ports = file.services[name]?.ports ?? [];
      expect(ports.length, name).toBeGreaterThan(0);
      for (const port of ports) expect(port, name).toMatch(/^127\.0\.0\.1:/);
    }
    // Listening on every address in its container, walflow checks the Host of those routes only when given names.
    expect(walflow?.environment?.WALFLOW_HTTP_ALLOWED_HOSTS).toBe('walflow');
  });

  it('runs the built CLI with the pinned pnpm', () => {
    const dockerfile = read('Dockerfile');
    const packageManager = (JSON.parse(read('package.json')) as { packageManager: string }).packageManager;
    expect(dockerfile).toContain(`npm install -g ${packageManager}`);
    expect(dockerfile).toContain('ENTRYPOINT ["node", "packages/cli/dist/walflow.js"]');
    expect((JSON.parse(read('packages/cli/package.json')) as { bin: Record<string, string> }).bin.walflow).toBe('./dist/walflow.js');
    expect(existsSync(`${root}packages/cli/dist/walflow.js`)).toBe(true);
  });

  it.skipIf(!hasComposePlugin())('is accepted by docker compose config', () => {
    expect(() => execFileSync('docker', ['compose', '-f', `${root}docker-compose.yml`, 'config', '--quiet'], { stdio: 'pipe' })).not.toThrow();
  });
});

function hasComposePlugin(): boolean {
  try {
    execFileSync('docker', ['compose', 'version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
