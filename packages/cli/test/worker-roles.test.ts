import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WalflowDatabase } from '@walflow/core';
import { applyWorkflow } from '@walflow/executor';
import { emitMany } from '@walflow/outbox';
import { createDatabase, migrate } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runWalflow, startWalflowProcess, type WalflowChild } from './walflow-process.js';

const database = useTestDatabase();
const logger = pino({ level: 'silent' });
let db: Kysely<WalflowDatabase>;
let env: Record<string, string>;
const children: WalflowChild[] = [];

/** A webhook receiver that holds every request a while and counts how many are in flight, per path. */
let hooks: Server;
let holdMs = 150;
const inFlight = new Map<string, number>();
const maxInFlight = new Map<string, number>();
let received = 0;

beforeAll(async () => {
  hooks = createServer((request, response) => {
    // Counted per path and per first segment (/per-key/eu also counts as /per-key).
    const path = request.url ?? '/';
    const keys = [...new Set([path, `/${path.split('/')[1] ?? ''}`])];
    for (const key of keys) {
      const current = (inFlight.get(key) ?? 0) + 1;
      inFlight.set(key, current);
      maxInFlight.set(key, Math.max(maxInFlight.get(key) ?? 0, current));
    }
    received++;
    request.resume();
    setTimeout(() => {
      for (const key of keys) inFlight.set(key, (inFlight.get(key) ?? 1) - 1);
      response.writeHead(204).end();
    }, holdMs);
  });
  await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', () => resolve()));
  env = {
    DATABASE_URL: database.url,
    WALFLOW_SLOT: database.slotName,
    WALFLOW_HTTP_PORT: '0',
    WALFLOW_HTTP_HOST: '127.0.0.1',
    WALFLOW_LOG_LEVEL: 'info',
    WALFLOW_WORKER_POLL_MS: '100',
    WALFLOW_WEBHOOK_SECRET: `whsec_${Buffer.from('worker-roles-test-secret-24b').toString('base64')}`,
    WALFLOW_WEBHOOK_ALLOW_HOSTS: '127.0.0.1',
  };
  db = createDatabase(database.url, logger, { max: 4 });
  await migrate({ db, slotName: database.slotName, logger });
});
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});
afterAll(async () => {
  await db?.destroy();
  await new Promise<void>((resolve) => (hooks ? hooks.close(() => resolve()) : resolve()));
});

async function start(role: 'consumer' | 'worker' | 'http', extra: Record<string, string> = {}): Promise<WalflowChild> {
  const child = await startWalflowProcess({ ...env, ...extra }, role);
  children.push(child);
  return child;
}

async function stop(child: WalflowChild): Promise<void> {
  child.kill('SIGTERM');
  expect(await child.exited).toBe(0);
}

async function count(query: ReturnType<typeof sql<{ n: string }>>): Promise<number> {
  return Number((await query.execute(db)).rows[0]?.n);
}

const runs = (tenant: string, status: string) =>
  count(sql`SELECT count(*) AS n FROM walflow.workflow_runs WHERE tenant_id = ${tenant} AND status = ${status}`);
const walSenders = () => count(sql`SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'walsender' AND datname = current_database()`);
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function request(tenant: string, payloads: Record<string, unknown>[]): Promise<void> {
  await emitMany(db, payloads.map((payload) => ({ type: 'job.requested', tenantId: tenant, payload })));
}

describe('walflow start --role', () => {
  it('explains the roles in its help and refuses a bad one clearly', async () => {
    const help = await runWalflow(['start', '--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--role <role>/);
    expect(help.stdout.replace(/\s+/g, ' ')).toMatch(/choices: "all", "consumer", "worker", "http"/);
    expect(help.stdout).toMatch(/^ {2}worker {4}executes queued runs/m);

    const bad = await runWalflow(['start', '--role', 'everything'], env);
    expect(bad.code).toBe(2);
    expect(bad.output).toMatch(/argument 'everything' is invalid\. Allowed choices are all, consumer, worker, http/);

    const badEnv = await runWalflow(['start'], { ...env, WALFLOW_ROLE: 'everything' });
    expect(badEnv.code).toBe(2);
    expect(badEnv.output).toMatch(/WALFLOW_ROLE/);

    const idle = await runWalflow(['start', '--role', 'worker'], { ...env, WALFLOW_WORKER_CONCURRENCY: '0' });
    expect(idle.code).toBe(2);
    expect(idle.output).toMatch(/role worker needs WALFLOW_WORKER_CONCURRENCY of at least 1/);
  });

  it('splits the work: a worker never replicates, a consumer executes nothing, http only answers, and NOTIFY wakes a worker elsewhere', async () => {
    const tenant = 'roles';
    await applyWorkflow(db, { tenant, name: 'note', trigger: { event: 'job.requested' }, actions: [{ type: 'create_notification', recipient: 'ops', title: 'job {{event.payload.n}}' }] });
    // Polling once a minute: only a notification can bring it the runs queued below in time.
    const worker = await start('worker', { WALFLOW_WORKER_POLL_MS: '60000' });
    await request(tenant, [{ n: 1 }, { n: 2 }, { n: 3 }]);
    await pause(1000);
    expect(await count(sql`SELECT count(*) AS n FROM walflow.outbox WHERE tenant_id = ${tenant}`)).toBe(3);
    expect(await walSenders()).toBe(0);
    expect(await count(sql`SELECT count(*) AS n FROM pg_replication_slots WHERE slot_name = ${database.slotName} AND active`)).toBe(0);
    expect(await count(sql`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'walflow-leader-lock' AND datname = current_database()`)).toBe(0);

    const consumer = await start('consumer');
    await waitFor('the worker to run what the consumer queued', async () => (await runs(tenant, 'succeeded')) === 3, { timeoutMs: 15_000 });
    expect(await walSenders()).toBe(1);
    expect(await count(sql`SELECT count(*) AS n FROM walflow.notifications WHERE tenant_id = ${tenant}`)).toBe(3);
    await stop(worker);

    await request(tenant, [{ n: 4 }, { n: 5 }]);
    await waitFor('the consumer to queue the runs', async () => (await runs(tenant, 'queued')) === 2);
    const http = await start('http');
    const port = Number(/"httpPort":(\d+)/.exec(http.output())?.[1]);
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ role: null, runs: { queued: 2 } });
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    await pause(1000);
    expect(await runs(tenant, 'queued')).toBe(2);
    expect(await count(sql`SELECT count(*) AS n FROM walflow.workflow_runs WHERE tenant_id = ${tenant} AND attempts > 0 AND status = 'queued'`)).toBe(0);
    expect(await walSenders()).toBe(1);
    await stop(http);
    await stop(consumer);
  });

  it('hands runs still going at SIGTERM back to the queue when the grace period is over', async () => {
    const tenant = 'sigterm';
    holdMs = 5000;
    try {
      await applyWorkflow(db, { tenant, name: 'slow', trigger: { event: 'job.requested' }, actions: [{ type: 'webhook', url: `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/slow` }] });
      const consumer = await start('consumer');
      const worker = await start('worker', { WALFLOW_SHUTDOWN_GRACE_MS: '200' });
      await request(tenant, [{ n: 1 }]);
      await waitFor('the run to start', async () => (await runs(tenant, 'running')) === 1);
      await stop(worker);
      const run = await db.selectFrom('walflow.workflow_runs').select(['status', 'attempts', 'locked_by', 'last_error']).where('tenant_id', '=', tenant).executeTakeFirstOrThrow();
      expect(run).toEqual({ status: 'queued', attempts: 0, locked_by: null, last_error: 'released by a worker that shut down' });
      await stop(consumer);
      // Checked; the next test's workers should not take it.
      await sql`UPDATE walflow.workflow_runs SET status = 'cancelled' WHERE tenant_id = ${tenant}`.execute(db);
    } finally {
      holdMs = 150;
    }
  });
});

describe('a concurrency limit across worker processes', () => {
  it('never has more runs of the workflow going than the limit, per key value, with three workers claiming', async () => {
    const port = (hooks.address() as AddressInfo).port;
    const webhook = (path: string) => [{ type: 'webhook' as const, url: `http://127.0.0.1:${port}${path}` }];
    const limited = (
      await applyWorkflow(db, { tenant: 'limit', name: 'two-at-a-time', trigger: { event: 'job.requested' }, concurrency: { limit: 2 }, actions: webhook('/limit') })
    ).workflow.id;
    const perRegion = (
      await applyWorkflow(db, {
        tenant: 'per-key',
        name: 'one-per-region',
        trigger: { event: 'job.requested' },
        concurrency: { limit: 1, key: 'event.payload.region' },
        actions: webhook('/per-key/{{event.payload.region}}'),
      })
    ).workflow.id;
    const regions = ['eu', 'us', 'ap'];
    const consumer = await start('consumer');
    const workers = await Promise.all([start('worker'), start('worker'), start('worker')]);
    const startedWith = received;
    await request('limit', Array.from({ length: 16 }, (_, n) => ({ n })));
    await request('per-key', Array.from({ length: 15 }, (_, n) => ({ n, region: regions[n % 3] })));

    // Beside the webhook receiver's view, sample what the runs table says is running.
    const maxRunning = new Map<string, number>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { rows } = await sql<{ workflow_id: string; concurrency_key: string; n: string }>`
          SELECT workflow_id, concurrency_key, count(*) AS n FROM walflow.workflow_runs
           WHERE workflow_id IN (${limited}, ${perRegion}) AND status = 'running' GROUP BY 1, 2`.execute(db);
        for (const row of rows) {
          const key = `${row.workflow_id === limited ? 'limit' : 'per-key'}/${row.concurrency_key}`;
          maxRunning.set(key, Math.max(maxRunning.get(key) ?? 0, Number(row.n)));
        }
        await pause(10);
      }
    })();
    try {
      await waitFor('every run to succeed', async () => (await runs('limit', 'succeeded')) === 16 && (await runs('per-key', 'succeeded')) === 15, { timeoutMs: 45_000 });
    } finally {
      sampling = false;
      await sampler;
    }
    expect(received - startedWith).toBe(31);
    // The limit held, and was used: two at once for the workflow, one per region with regions side by side.
    expect(maxInFlight.get('/limit')).toBe(2);
    expect(maxRunning.get('limit/')).toBe(2);
    for (const region of regions) {
      expect(maxInFlight.get(`/per-key/${region}`)).toBe(1);
      expect(maxRunning.get(`per-key/${region}`)).toBe(1);
    }
    expect(maxInFlight.get('/per-key')).toBeGreaterThan(1);
    await Promise.all([...workers, consumer].map(stop));
  });
});
