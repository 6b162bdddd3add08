import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { WalflowDatabase } from '@walflow/core';
import { emit } from '@walflow/outbox';
import { listAudit, type RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_TOKEN, startConsoleWalflow } from './console-fixtures.js';
import { applyTestWorkflow } from './fixtures.js';

/** Screenshots of the overview and the explain view land here (gitignored). */
const OUTPUT = fileURLToPath(new URL('./output/', import.meta.url));

const database = useTestDatabase();
let walflow: RunningWalflow;
let db: Kysely<WalflowDatabase>;
let browser: Browser;
let page: Page;
let base: string;

const emitOne = (type: string, payload: Record<string, unknown>, aggregateId?: string): Promise<string> =>
  db.transaction().execute((trx) => emit(trx, { type, payload, aggregateType: 'order', ...(aggregateId === undefined ? {} : { aggregateId }) }));

beforeAll(async () => {
  walflow = await startConsoleWalflow(database.url, database.slotName, { updateFields: ['public.stock.count'] });
  db = walflow.db;
  base = `http://127.0.0.1:${walflow.httpPort}`;
  await applyTestWorkflow(db, {
    name: 'welcome-big-order',
    trigger: { event: 'order.placed' },
    condition: 'event.payload.total >= 100',
    actions: [{ type: 'create_notification', recipient: 'sales', title: 'Big order {{event.aggregateId}}' }],
  });
  await applyTestWorkflow(db, {
    name: 'ship-order',
    trigger: { event: 'order.*' },
    actions: [{ type: 'emit_event', event: 'order.shipped', payload: { orderId: '{{event.aggregateId}}' } }],
  });
  // Its row is missing until the test adds it: the one attempt fails, and the run is dead until retried.
  await sql`CREATE TABLE public.stock (sku text PRIMARY KEY, count integer NOT NULL DEFAULT 0)`.execute(db);
  await applyTestWorkflow(
    db,
    {
      name: 'count-stock',
      trigger: { event: 'stock.counted' },
      actions: [{ type: 'update_field', table: 'public.stock', key: { column: 'sku', value: '{{event.payload.sku}}' }, column: 'count', increment: 1 }],
      retry: { maxAttempts: 1 },
    },
    { updateFields: ['public.stock.count'] },
  );
  await mkdir(OUTPUT, { recursive: true });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
});
afterAll(async () => {
  await browser?.close();
  await walflow?.stop();
});

describe('the operator console in a browser', () => {
  it('signs in, watches events arrive, explains them, pauses a workflow and retries a dead run', async () => {
    const unauthenticated = await page.goto(`${base}/console`);
    expect(unauthenticated?.status()).toBe(401);
    await page.fill('input[name=name]', 'alice');
    await page.fill('input[name=token]', CONSOLE_TOKEN);
    await Promise.all([page.waitForURL(`${base}/console`), page.click('button:has-text("Sign in")')]);
    await page.waitForSelector('text=Health checks');

    // Live mode: the new event appears on the open page; the marker shows the page was never reloaded.
    await page.goto(`${base}/console/events?live=1&type=order.placed`);
    await page.waitForSelector('#live-state:has-text("live: connected")');
    await page.evaluate('window.notReloaded = true');
    const bigOrder = await emitOne('order.placed', { total: 250 }, 'o-1');
    const link = page.locator(`#events tbody a[href="/console/events/${bigOrder}"]`);
    await link.waitFor();
    expect(await page.evaluate('window.notReloaded')).toBe(true);

    // The explain view: every workflow considered, with its decision and the reason; the runs; the chain.
    await link.click();
    await page.waitForSelector('#decisions');
    await waitFor('the event’s runs to finish', async () => {
      await page.reload();
      return (await page.locator('#runs td.status .succeeded').count()) === 2 && (await page.locator('svg.graph').count()) === 1;
    });
    expect(await page.locator('#decisions tr:has-text("welcome-big-order") .badge').textContent()).toBe('fired');
    expect(await page.locator('#decisions tr:has-text("ship-order") .badge').textContent()).toBe('fired');
    expect(await page.locator('svg.graph').textContent()).toContain('order.shipped');
    await page.screenshot({ path: `${OUTPUT}console-event-detail.png`, fullPage: true });
    const smallOrder = await emitOne('order.placed', { total: 20 }, 'o-2');
    await page.goto(`${base}/console/events/${smallOrder}`);
    await waitFor('the small order to be recorded', async () => (await page.reload())?.status() === 200);
    expect(await page.locator('#decisions tr:has-text("welcome-big-order") .reason').textContent()).toBe('condition is false');

    // Pause from the workflows page: the next event is recorded, and the workflow's decision says inactive.
    await page.goto(`${base}/console/workflows`);
    await Promise.all([page.waitForURL(`${base}/console/workflows`), page.click('tr[data-workflow="welcome-big-order"] button:has-text("Pause")')]);
    await page.waitForSelector('.notice.done:has-text("Paused default/welcome-big-order.")');
    expect(await page.locator('tr[data-workflow="welcome-big-order"] .badge').first().textContent()).toBe('paused');
    const whilePaused = await emitOne('order.placed', { total: 500 }, 'o-3');
    await page.goto(`${base}/console/events/${whilePaused}`);
    await waitFor('the event recorded while paused', async () => (await page.reload())?.status() === 200);
    expect(await page.locator('#decisions tr:has-text("welcome-big-order") .badge').textContent()).toBe('inactive');
    expect(await page.locator('#decisions tr:has-text("welcome-big-order") .reason').textContent()).toBe('workflow is paused');

    // A dead run, retried from the dead-runs page once its cause is fixed, succeeds.
    const counted = await emitOne('stock.counted', { sku: 'A1' });
    const run = await waitFor('the run to die', () =>
      db.selectFrom('walflow.workflow_runs').select('id').where('event_id', '=', counted).where('status', '=', 'dead').executeTakeFirst(),
    );
    await sql`INSERT INTO public.stock (sku) VALUES ('A1')`.execute(db);
    await page.goto(`${base}/console/dead`);
    await Promise.all([page.waitForURL(`${base}/console/dead`), page.click(`tr[data-run="${run.id}"] button:has-text("Retry")`)]);
    await page.waitForSelector('.notice.done:has-text("Queued again 1 dead run.")');
    await waitFor('the retried run to succeed', () =>
      db.selectFrom('walflow.workflow_runs').select('id').where('id', '=', run.id).where('status', '=', 'succeeded').executeTakeFirst(),
    );
    await page.goto(`${base}/console/events/${counted}`);
    expect(await page.locator(`#run-${run.id} td.status`).textContent()).toBe('succeeded');
    expect((await sql<{ count: number }>`SELECT count FROM public.stock WHERE sku = 'A1'`.execute(db)).rows[0]?.count).toBe(1);

    const audit = await listAudit(db, { since: new Date(Date.now() - 600_000), limit: 10 });
    expect(audit.map((entry) => [entry.actor, entry.action, entry.target])).toEqual([
      ['alice (console)', 'run.retry', run.id],
      ['alice (console)', 'workflow.pause', 'default/welcome-big-order'],
    ]);
    await page.goto(`${base}/console`);
    await page.waitForSelector('text=Recent operator actions');
    await page.screenshot({ path: `${OUTPUT}console-overview.png`, fullPage: true });
  });
});
