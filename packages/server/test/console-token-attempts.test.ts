import type { RunningWalflow } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_FAILED_TOKENS } from '../src/console/token-attempts.js';
import { CONSOLE_TOKEN, ConsoleClient, startConsoleWalflow } from './console-fixtures.js';
import { openMigrated } from './fixtures.js';

const database = useTestDatabase();
let walflow: RunningWalflow;
let client: ConsoleClient;

beforeAll(async () => {
  await (await openMigrated(database)).destroy();
  walflow = await startConsoleWalflow(database.url, database.slotName, { role: 'http' });
  client = new ConsoleClient(walflow.httpPort!);
});
afterAll(async () => {
  await walflow?.stop();
});

describe('the console, to an address that keeps trying wrong tokens', () => {
  it('refuses every token for the rest of the minute, the right one too, and keeps signed-in sessions going', async () => {
    const session = await client.login('ops', CONSOLE_TOKEN);
    const signIn = (token: string) => client.request('/console/login', { form: { name: 'ops', token }, headers: { origin: client.origin, 'sec-fetch-site': 'same-origin' } });
    for (let attempt = 0; attempt < MAX_FAILED_TOKENS; attempt++) {
      expect((await (attempt % 2 === 0 ? signIn(`guess-${attempt}`) : client.request('/console', { headers: { authorization: `Bearer guess-${attempt}` } }))).status).toBe(401);
    }
    const refused = await signIn(CONSOLE_TOKEN);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.text).toContain('Too many wrong tokens');
    expect((await client.request('/console', { headers: { authorization: `Bearer ${CONSOLE_TOKEN}` } })).status).toBe(429);
    expect((await client.request('/console', { headers: { cookie: session } })).status).toBe(200);
  });
});
