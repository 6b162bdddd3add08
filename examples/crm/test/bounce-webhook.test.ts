import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOUNCE_PATH, startBounceWebhook, type BounceWebhook } from '../src/bounce-webhook.js';
import { createUser } from '../src/users.js';
import { emittedBy, useCrmDatabase } from './crm-test-database.js';

const { crm, walflow } = useCrmDatabase();
let webhook: BounceWebhook;
/** What the webhook logged, a JSON line each. */
const logged: string[] = [];
beforeAll(async () => {
  webhook = await startBounceWebhook({ db: crm(), logger: pino({}, { write: (line: string) => logged.push(line) }) });
});
afterAll(async () => {
  await webhook?.close();
});

const bounce = { type: 'bounce', email: 'ada@crm.test', bounceType: 'hard', messageId: '<walflow.abc@agency.example>', description: '550 5.1.1 mailbox unknown', bouncedAt: '2025-05-01T12:00:00Z' };

async function post(body: string, url = webhook.url, method = 'POST'): Promise<{ status: number; body: { error?: string; eventId?: string } }> {
  const response = await fetch(url, { method, headers: { 'content-type': 'application/json' }, ...(method === 'POST' ? { body } : {}) });
  return { status: response.status, body: (await response.json()) as { error?: string; eventId?: string } };
}

describe('the bounce webhook', () => {
  it('refuses what is not a bounce notification with a message that says why, and emits nothing', async () => {
    const rows = await emittedBy(walflow(), async () => {
      expect(await post('{"type": "bounce",')).toMatchObject({ status: 400, body: { error: expect.stringContaining('the body is not JSON') } });
      const invalid = await post(JSON.stringify({ ...bounce, email: 'nobody', bounceType: 'maybe', bouncedAt: undefined }));
      expect(invalid.status).toBe(400);
      expect(invalid.body.error).toMatch(/^invalid bounce notification: /);
      for (const field of ['email:', 'bounceType:', 'bouncedAt:']) expect(invalid.body.error).toContain(field);
      expect(await post(JSON.stringify({ ...bounce, type: 'delivery' }))).toMatchObject({ status: 400, body: { error: expect.stringContaining('type:') } });
      expect(await post(JSON.stringify({ ...bounce, description: 'x'.repeat(70_000) }))).toMatchObject({ status: 413 });
      // Larger than the socket's buffers: the client is still sending when the limit is passed, and gets the 413.
      for (const size of [512 * 1024, 2 * 1024 * 1024]) {
        expect(await post(JSON.stringify({ ...bounce, description: 'x'.repeat(size) }))).toMatchObject({ status: 413, body: { error: 'the body is larger than 65536 bytes' } });
      }
      expect(await post('', webhook.url, 'GET')).toMatchObject({ status: 405, body: { error: 'GET is not allowed; use POST' } });
      expect(await post(JSON.stringify(bounce), webhook.url.replace(BOUNCE_PATH, '/webhooks/other'))).toMatchObject({ status: 404 });
    });
    expect(rows).toEqual([]);
  });

  it('refuses text and times PostgreSQL cannot store with a 400 naming the field, and emits nothing', async () => {
    const rows = await emittedBy(walflow(), async () => {
      for (const [field, value] of [
        ['description', 'mailbox \u0000 unknown'],
        ['messageId', '<\ud800@agency.example>'],
        ['description', 'half an emoji \udc00'],
        ['bouncedAt', '0000-01-01T00:00:00Z'],
        ['bouncedAt', '2025-05-01T12:00:00+16:00'],
        // Past what SMTP allows, and what an event's aggregate id may take.
        ['email', `${'a'.repeat(1_100)}@crm.test`],
      ] as const) {
        expect(await post(JSON.stringify({ ...bounce, [field]: value }))).toMatchObject({ status: 400, body: { error: expect.stringContaining(`${field}:`) } });
      }
    });
    expect(rows).toEqual([]);
  });

  it('emits email.bounced for a valid notification and marks the user whose address bounced', async () => {
    const ada = await createUser(crm(), { name: 'Ada Lovelace', email: 'ada@crm.test', role: 'agent' });
    let eventId: string | undefined;
    const rows = await emittedBy(walflow(), async () => {
      const accepted = await post(JSON.stringify({ ...bounce, providerField: 'ignored' }));
      expect(accepted.status).toBe(202);
      eventId = accepted.body.eventId;
    });
    expect(rows).toEqual([
      {
        event_type: 'email.bounced',
        aggregate_id: 'ada@crm.test',
        payload: {
          email: 'ada@crm.test',
          userId: ada.id,
          messageId: '<walflow.abc@agency.example>',
          bounceType: 'hard',
          description: '550 5.1.1 mailbox unknown',
          bouncedAt: '2025-05-01T12:00:00Z',
        },
        metadata: {},
      },
    ]);
    const outbox = await walflow().selectFrom('walflow.outbox').select('id').where('event_type', '=', 'email.bounced').execute();
    expect(outbox).toEqual([{ id: eventId }]);
    const stored = await crm().selectFrom('crm.users').select('email_bounced_at').where('id', '=', ada.id).executeTakeFirstOrThrow();
    expect(stored.email_bounced_at).toEqual(new Date('2025-05-01T12:00:00Z'));
  });

  it('emits email.bounced without a user for an address nobody has, and without a Message-ID when none is given', async () => {
    const rows = await emittedBy(walflow(), () =>
      post(JSON.stringify({ type: 'bounce', email: 'gone@crm.test', bounceType: 'soft', bouncedAt: '2025-05-01T12:00:00+02:00' })),
    );
    expect(rows).toMatchObject([
      { event_type: 'email.bounced', payload: { email: 'gone@crm.test', userId: null, messageId: null, bounceType: 'soft', description: '' } },
    ]);
  });
});

describe('a bounce the database cannot record', () => {
  it('is answered 500, which providers retry, and changes nothing: the user is not marked without its event; the reason is logged, not told to the caller', async () => {
    const linus = await createUser(crm(), { name: 'Linus Pauling', email: 'linus@crm.test', role: 'agent' });
    await sql`CREATE FUNCTION public.refuse_bounce() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the outbox is full'; END $$`.execute(walflow());
    await sql`CREATE TRIGGER refuse_bounce BEFORE INSERT ON walflow.outbox FOR EACH ROW WHEN (NEW.event_type = 'email.bounced') EXECUTE FUNCTION public.refuse_bounce()`.execute(walflow());
    const marked = async () => (await crm().selectFrom('crm.users').select('email_bounced_at').where('id', '=', linus.id).executeTakeFirstOrThrow()).email_bounced_at;
    try {
      const rows = await emittedBy(walflow(), async () => {
        const refused = await post(JSON.stringify({ ...bounce, email: 'linus@crm.test' }));
        expect(refused).toMatchObject({ status: 500, body: { error: 'the bounce could not be recorded; send it again later' } });
      });
      expect(logged.some((line) => line.includes('the outbox is full'))).toBe(true);
      expect(rows).toEqual([]);
      expect(await marked()).toBeNull();
    } finally {
      await sql`DROP TRIGGER refuse_bounce ON walflow.outbox`.execute(walflow());
    }
    // Sent again, as the provider does, once the database takes it.
    expect((await post(JSON.stringify({ ...bounce, email: 'linus@crm.test' }))).status).toBe(202);
    expect(await marked()).not.toBeNull();
  });
});
