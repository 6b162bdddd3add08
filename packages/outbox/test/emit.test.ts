import { defineCatalog, defineEvent, type EmitEvent, type WalflowDatabase } from '@walflow/core';
import { createOutbox, emit, emitCaused, emitMany } from '@walflow/outbox';
import { migrate, createDatabase } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';

const database = useTestDatabase();
const logger = pino({ level: 'silent' });
let db: Kysely<WalflowDatabase>;

const catalog = defineCatalog(
  defineEvent('recruit.graduated_to_agent', z.object({ recruitId: z.string() })),
  defineEvent('policy.approved', z.object({ policyId: z.string(), premium: z.number().positive() })),
);
const outbox = createOutbox(catalog);

beforeAll(async () => {
  db = createDatabase(database.url, logger);
  await migrate({ db, slotName: database.slotName, logger });
});
afterAll(async () => {
  await db.destroy();
});

async function outboxRows() {
  return db.selectFrom('walflow.outbox').selectAll().orderBy('id').execute();
}

describe('emit', () => {
  it('writes through the caller’s Kysely transaction and commits with it', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    const id = await db.transaction().execute((trx) =>
      emit(trx, { type: 'recruit.graduated_to_agent', payload: { recruitId: 'r1' }, aggregateType: 'recruit', aggregateId: 'r1', tenantId: 't1', actorId: 'u7' }),
    );
    const rows = await outboxRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      id,
      tenant_id: 't1',
      event_type: 'recruit.graduated_to_agent',
      aggregate_type: 'recruit',
      aggregate_id: 'r1',
      payload: { recruitId: 'r1' },
      metadata: { actorId: 'u7' },
    });
  });

  it('writes the application’s metadata, as walflow.emit does, and refuses the keys only walflow sets', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    const event = { type: 'policy.approved', payload: { policyId: 'p1', premium: 10 } };
    await emit(db, { ...event, actorId: 'u7', metadata: { priority: 'critical', actorId: 'overridden', source: { app: 'crm' } } });
    await outbox.emit(db, { type: 'policy.approved', payload: { policyId: 'p1', premium: 10 }, metadata: { priority: 'low' } });
    expect((await outboxRows()).map((row) => row.metadata)).toEqual([{ priority: 'critical', actorId: 'u7', source: { app: 'crm' } }, { priority: 'low' }]);
    for (const key of ['correlationId', 'causationId', 'depth', 'workflowId', 'runId', 'replayId']) {
      await expect(emit(db, { ...event, metadata: { [key]: 'x' } }), key).rejects.toMatchObject({ code: 'payload_invalid', message: expect.stringContaining(`may not set ${key}`) });
    }
    // From JavaScript, anything may arrive.
    await expect(emit(db, { ...event, metadata: 'critical' } as unknown as EmitEvent)).rejects.toMatchObject({ code: 'payload_invalid', message: expect.stringContaining('must be a JSON object') });
    expect(await outboxRows()).toHaveLength(2);
    await sql`DELETE FROM walflow.outbox`.execute(db);
  });

  it('writes nothing when the caller’s transaction rolls back', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    await expect(
      db.transaction().execute(async (trx) => {
        await emit(trx, { type: 'policy.approved', payload: { policyId: 'p1', premium: 1 } });
        throw new Error('domain write failed');
      }),
    ).rejects.toThrow('domain write failed');
    expect(await outboxRows()).toHaveLength(0);
  });

  it('writes through a pg client inside the caller’s transaction', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query('BEGIN');
      const ids = await emitMany(client, [
        { type: 'policy.approved', payload: { policyId: 'p1', premium: 10 } },
        { type: 'policy.approved', payload: { policyId: 'p2', premium: 20 } },
      ]);
      expect(ids).toHaveLength(2);
      await client.query('ROLLBACK');
      expect(await outboxRows()).toHaveLength(0);
      await client.query('BEGIN');
      const [first] = await emitMany(client, [{ type: 'policy.approved', payload: { policyId: 'p3', premium: 30 } }]);
      await client.query('COMMIT');
      expect((await outboxRows()).map((row) => row.id)).toEqual([first]);
    } finally {
      await client.end();
    }
  });

  it('validates payloads against the catalog and writes nothing when they are wrong', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    await expect(
      db.transaction().execute((trx) =>
        // @ts-expect-error premium must be a number: the catalog types the payload at compile time
        outbox.emit(trx, { type: 'policy.approved', payload: { policyId: 'p1', premium: 'lots' } }),
      ),
    ).rejects.toMatchObject({ code: 'payload_invalid', message: expect.stringMatching(/premium/) });
    await expect(
      db.transaction().execute((trx) =>
        // @ts-expect-error unknown event types do not compile
        outbox.emit(trx, { type: 'policy.rejected', payload: {} }),
      ),
    ).rejects.toMatchObject({ code: 'event_unknown' });
    expect(await outboxRows()).toHaveLength(0);
    await db.transaction().execute((trx) => outbox.emit(trx, { type: 'policy.approved', payload: { policyId: 'p1', premium: 5 } }));
    expect(await outboxRows()).toHaveLength(1);
  });

  it('refuses a bad event type or a payload that is not an object', async () => {
    await expect(emit(db, { type: 'no spaces please', payload: {} })).rejects.toMatchObject({ code: 'payload_invalid' });
    await expect(emit(db, { type: 'a.b', payload: [1] as unknown as Record<string, unknown> })).rejects.toThrow(/JSON object/);
  });

  it('types each event of a typed emitMany by its own type', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    await expect(
      db.transaction().execute((trx) =>
        outbox.emitMany(trx, [
          { type: 'policy.approved', payload: { policyId: 'p1', premium: 5 } },
          // @ts-expect-error the payload of another event type in the list does not compile
          { type: 'policy.approved', payload: { recruitId: 'r1' } },
        ]),
      ),
    ).rejects.toMatchObject({ code: 'payload_invalid', message: expect.stringMatching(/^events\[1\]: /) });
    expect(await outboxRows()).toHaveLength(0);
    // The untyped one names the event too; a single emit has no index to give.
    await expect(emitMany(db, [{ type: 'a.b', payload: {} }, { type: 'a.b', payload: {} }, { type: 'a.b', payload: { n: Number.NaN } }])).rejects.toThrow(/^events\[2\]: payload of a\.b holds NaN at \$\.n/);
    await expect(emit(db, { type: 'a.b', payload: { n: Number.NaN } })).rejects.toThrow(/^payload of a\.b holds NaN/);
    expect(await outboxRows()).toHaveLength(0);
  });

  it('takes an empty list in emitMany: nothing written, and the caller\'s transaction goes on', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    const ids = await db.transaction().execute(async (trx) => {
      const none = await emitMany(trx, []);
      const typed = await outbox.emitMany(trx, []);
      return [...none, ...typed, await emit(trx, { type: 'policy.approved', payload: { policyId: 'after', premium: 1 } })];
    });
    expect((await outboxRows()).map((row) => row.id)).toEqual(ids);
  });

  it('returns emitMany ids in the order of the events given', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    const ids = await emitMany(db, Array.from({ length: 5 }, (_, n) => ({ type: 'policy.approved', payload: { policyId: `p${n}`, premium: 1 } })));
    const byId = new Map((await outboxRows()).map((row) => [row.id, (row.payload as { policyId: string }).policyId]));
    expect(ids.map((id) => byId.get(id))).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);
  });

  it('takes a null tenant from JavaScript as none: the default, or the session tenant', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    const noTenant = { type: 'policy.approved', payload: {}, tenantId: null } as unknown as Parameters<typeof emit>[1];
    await emit(db, noTenant);
    await db.transaction().execute(async (trx) => {
      await sql`SELECT set_config('walflow.tenant_id', 't5', true)`.execute(trx);
      await emit(trx, noTenant);
    });
    expect((await outboxRows()).map((row) => row.tenant_id).sort()).toEqual(['default', 't5']);
  });
});

describe('emit refuses what the consumer could not take as written', () => {
  const refused = (where: string) => ({ code: 'payload_invalid', message: expect.stringContaining(where) as unknown });
  const approved = (payload: Record<string, unknown>) => ({ type: 'policy.approved', payload });

  it('refuses numbers JSON cannot carry exactly, BigInt, Map and Set, naming where they are', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    await expect(emit(db, approved({ order: { id: 2 ** 53 } }))).rejects.toMatchObject(refused('$.order.id'));
    await expect(emit(db, approved({ ids: [1, -(2 ** 60)] }))).rejects.toMatchObject(refused('$.ids[1]'));
    await expect(emit(db, approved({ huge: 1e300 }))).rejects.toMatchObject(refused('$.huge'));
    await expect(emit(db, approved({ premium: NaN }))).rejects.toMatchObject(refused('$.premium'));
    await expect(emit(db, approved({ 'a key': [Infinity] }))).rejects.toMatchObject(refused('$["a key"][0]'));
    await expect(emit(db, approved({ amount: 10n }))).rejects.toMatchObject(refused('$.amount'));
    await expect(emit(db, approved({ tags: new Set(['a']) }))).rejects.toMatchObject(refused('$.tags'));
    await expect(emit(db, approved({ nested: [{ byId: new Map([['a', 1]]) }] }))).rejects.toMatchObject(refused('$.nested[0].byId'));
    await expect(emitCaused(db, { ...approved({}), metadata: { depth: -Infinity } })).rejects.toMatchObject(refused('$.depth'));
    await expect(emitCaused(db, { ...approved({}), metadata: { runId: 'r', big: 2 ** 53 } })).rejects.toMatchObject(refused('metadata'));
    // Boxed, as JSON.stringify unboxes them after looking at them as objects.
    await expect(emit(db, approved({ premium: new Number(NaN) }))).rejects.toMatchObject(refused('$.premium'));
    await expect(emit(db, approved({ name: [new String('a\u0000')] }))).rejects.toMatchObject(refused('$.name[0]'));
    await expect(emit(db, { type: 'a.b', payload: new String('x') as unknown as Record<string, unknown> })).rejects.toMatchObject(refused('JSON object'));
    expect(await outboxRows()).toHaveLength(0);
  });

  it('refuses a payload whose JSON is not an object', async () => {
    await expect(emit(db, { type: 'a.b', payload: new Date() as unknown as Record<string, unknown> })).rejects.toMatchObject(refused('JSON object'));
    await expect(emit(db, approved({ toJSON: () => undefined }))).rejects.toMatchObject(refused('JSON object'));
    await expect(emit(db, approved({ toJSON: () => [1] }))).rejects.toMatchObject(refused('JSON object'));
    expect(await outboxRows()).toHaveLength(0);
  });

  it('refuses NUL and lone surrogates in strings and keys, which jsonb cannot store', async () => {
    await expect(emit(db, approved({ name: 'a\u0000b' }))).rejects.toMatchObject(refused('$.name'));
    await expect(emit(db, approved({ ['a\u0000']: 1 }))).rejects.toMatchObject(refused('$["a\\u0000"]'));
    await expect(emit(db, approved({ text: ['ok', 'half \ud83d'] }))).rejects.toMatchObject(refused('$.text[1]'));
    await expect(emit(db, approved({ ['\udc00']: 'x' }))).rejects.toMatchObject(refused('$["\\udc00"]'));
    await expect(emit(db, { ...approved({}), actorId: 'u\u0000' })).rejects.toMatchObject(refused('$.actorId'));
    expect(await outboxRows()).toHaveLength(0);
  });

  it('refuses a payload or metadata nested deeper than the consumer takes, however deep', async () => {
    const nested = (levels: number): Record<string, unknown> => {
      let value: Record<string, unknown> = { leaf: 1 };
      for (let level = 1; level < levels; level++) value = { a: [value] };
      return value;
    };
    // nested(n) is 2n - 1 levels: objects and arrays alike count.
    await expect(emit(db, approved(nested(501)))).rejects.toMatchObject(refused('nests deeper than 1000 levels'));
    await expect(emit(db, approved(nested(50_000)))).rejects.toMatchObject({ code: 'payload_invalid' });
    await expect(emitCaused(db, { ...approved({}), metadata: { runId: 'r', source: nested(501) } })).rejects.toMatchObject(refused('metadata'));
    expect(await outboxRows()).toHaveLength(0);
    await emit(db, approved(nested(500)));
    expect(await outboxRows()).toHaveLength(1);
    await sql`DELETE FROM walflow.outbox`.execute(db);
  });

  it('refuses a payload or metadata larger than an event may be, and so does the outbox for SQL writers', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    const big = 'x'.repeat(16 * 1024 * 1024);
    await expect(emit(db, approved({ big }))).rejects.toMatchObject(refused('more than an event may (16 MiB)'));
    // Characters beyond ASCII count as the bytes they take.
    await expect(emit(db, approved({ big: 'é'.repeat(8 * 1024 * 1024) }))).rejects.toMatchObject(refused('more than an event may'));
    await expect(emitCaused(db, { ...approved({}), metadata: { runId: 'r', big } })).rejects.toMatchObject(refused('metadata'));
    // SQL writers meet the outbox's own bound, on PostgreSQL's text of the value, compressed or not.
    await expect(sql`SELECT walflow.emit('policy.approved', jsonb_build_object('big', repeat('x', 33 * 1024 * 1024)))`.execute(db)).rejects.toMatchObject({
      code: '23514',
      constraint: 'outbox_payload_size',
    });
    // Nor can numbers, which jsonb stores in a few bytes and writes out with every zero of their weight and scale:
    // 300 of these are 4.8 kB stored and 44 MB of text.
    for (const column of ['payload', 'metadata']) {
      const numbers = sql`(SELECT jsonb_build_object('n', jsonb_agg('1e131071'::numeric + round(0::numeric, 16383))) FROM generate_series(1, 300))`;
      const row = column === 'payload' ? sql`${numbers}, '{}'::jsonb` : sql`'{}'::jsonb, ${numbers}`;
      await expect(sql`INSERT INTO walflow.outbox (event_type, payload, metadata) SELECT 'policy.approved', ${row}`.execute(db), column).rejects.toMatchObject({
        constraint: `outbox_${column}_size`,
      });
    }
    await sql`CREATE TABLE public.compressed_payloads (payload jsonb)`.execute(db);
    try {
      await sql`INSERT INTO public.compressed_payloads SELECT jsonb_build_object('big', repeat('x', 33 * 1024 * 1024))`.execute(db);
      expect((await sql<{ method: string }>`SELECT pg_column_compression(payload) AS method FROM public.compressed_payloads`.execute(db)).rows).toEqual([{ method: 'pglz' }]);
      await expect(sql`INSERT INTO walflow.outbox (event_type, payload) SELECT 'policy.approved', payload FROM public.compressed_payloads`.execute(db)).rejects.toMatchObject({
        constraint: 'outbox_payload_size',
      });
    } finally {
      await sql`DROP TABLE public.compressed_payloads`.execute(db);
    }
    expect(await outboxRows()).toHaveLength(0);
    // What emit takes, the outbox takes: 15 MiB of text, and 3 MiB of small numbers, which jsonb stores in 18 MiB.
    await emit(db, approved({ big: 'x'.repeat(15 * 1024 * 1024) }));
    await emit(db, approved({ numbers: Array.from({ length: 1_500_000 }, () => 1) }));
    expect(await outboxRows()).toHaveLength(2);
    await sql`DELETE FROM walflow.outbox`.execute(db);
  });

  it('refuses them through emitMany and a typed outbox too, writing none of the events', async () => {
    await expect(emitMany(db, [approved({ ok: 1 }), approved({ n: NaN })])).rejects.toMatchObject(refused('$.n'));
    await expect(emitMany(db, [approved({ ok: 1 }), approved({ at: [new Date('not a date')] })])).rejects.toMatchObject(refused('invalid Date at $.at[0]'));
    await expect(outbox.emit(db, { type: 'policy.approved', payload: { policyId: 'p\u0000', premium: 1 } })).rejects.toMatchObject(
      refused('$.policyId'),
    );
    expect(await outboxRows()).toHaveLength(0);
  });

  it('stores the largest exact integers, surrogate pairs and dates as JSON writes them', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    const at = new Date('2026-01-02T03:04:05.678Z');
    const id = await emit(db, approved({ max: 2 ** 53 - 1, min: -(2 ** 53 - 1), half: 0.5, emoji: 'ok 😀', at, skipped: undefined }));
    const [row] = await outboxRows();
    expect(row).toMatchObject({ id, payload: { max: 2 ** 53 - 1, min: -(2 ** 53 - 1), half: 0.5, emoji: 'ok 😀', at: at.toISOString() } });
    await sql`DELETE FROM walflow.outbox`.execute(db);
  });
});

describe('a typed outbox validates the JSON it stores', () => {
  const typed = createOutbox(
    defineCatalog(
      defineEvent('meeting.booked', z.object({ at: z.date() })),
      defineEvent('lead.created', z.object({ leadId: z.string(), source: z.string().default('web') })),
    ),
  );

  it('refuses a payload the catalog accepts only before its JSON round trip, as the consumer would', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    await expect(typed.emit(db, { type: 'meeting.booked', payload: { at: new Date() } })).rejects.toMatchObject({
      code: 'payload_invalid',
      message: expect.stringMatching(/at/),
    });
    expect(await outboxRows()).toHaveLength(0);
  });

  it('stores the payload as given, as SQL writers and the consumer have it: keys the schema does not list stay, defaults are not filled in', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    await typed.emitMany(db, [{ type: 'lead.created', payload: { leadId: 'l1', extra: 1 } as { leadId: string } }]);
    expect((await outboxRows())[0]?.payload).toEqual({ leadId: 'l1', extra: 1 });
  });
});

describe('emit refuses names the event log cannot index', () => {
  const bytes = (count: number) => 'é'.repeat(count / 2) + 'x'.repeat(count % 2);

  it('refuses an empty tenant, NUL, and a tenant or aggregate beyond 1,000 bytes of UTF-8', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    const event = { type: 'policy.approved', payload: {} };
    const refused = (field: string) => ({ code: 'payload_invalid', message: expect.stringContaining(field) as unknown });
    await expect(emit(db, { ...event, tenantId: '' })).rejects.toMatchObject(refused('tenantId'));
    await expect(emit(db, { ...event, tenantId: 't\u0000' })).rejects.toMatchObject(refused('tenantId'));
    await expect(emit(db, { ...event, tenantId: bytes(1001) })).rejects.toMatchObject(refused('tenantId'));
    await expect(emit(db, { ...event, aggregateType: '' })).rejects.toMatchObject(refused('aggregateType'));
    await expect(emit(db, { ...event, aggregateType: bytes(1001) })).rejects.toMatchObject(refused('aggregateType'));
    await expect(emit(db, { ...event, aggregateId: bytes(1001) })).rejects.toMatchObject(refused('aggregateId'));
    await expect(emit(db, { ...event, aggregateId: 'a\ud800' })).rejects.toMatchObject(refused('aggregateId'));
    await expect(emitMany(db, [event, { ...event, aggregateId: 3 as unknown as string }])).rejects.toMatchObject(refused('aggregateId'));
    await expect(outbox.emit(db, { type: 'policy.approved', payload: { policyId: 'p', premium: 1 }, tenantId: '' })).rejects.toMatchObject(
      refused('tenantId'),
    );
    expect(await outboxRows()).toHaveLength(0);
    await emit(db, { ...event, tenantId: bytes(1000), aggregateType: bytes(1000), aggregateId: bytes(1000) });
    expect(await outboxRows()).toHaveLength(1);
  });

  it('refuses them from SQL writers too, by the outbox’s constraints', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    await expect(sql`SELECT walflow.emit('policy.approved', '{}', 'policy', ${bytes(1001)})`.execute(db)).rejects.toThrow(
      /outbox_aggregate_id_limit/,
    );
    await expect(sql`SELECT walflow.emit('policy.approved', '{}', ${bytes(1001)}, 'p1')`.execute(db)).rejects.toThrow(
      /outbox_aggregate_type_limit/,
    );
    await expect(sql`SELECT walflow.emit('policy.approved', '{}', 'policy', 'p1', '')`.execute(db)).rejects.toThrow(/outbox_tenant_id_limit/);
    await expect(
      sql`INSERT INTO walflow.outbox (tenant_id, event_type, payload) VALUES (${bytes(1001)}, 'policy.approved', '{}')`.execute(db),
    ).rejects.toThrow(/outbox_tenant_id_limit/);
    expect(await outboxRows()).toHaveLength(0);
    await sql`SELECT walflow.emit('policy.approved', '{}', 'policy', ${bytes(1000)}, ${bytes(1000)})`.execute(db);
    expect(await outboxRows()).toHaveLength(1);
  });
});

describe('emitMany of many events', () => {
  it('writes more events than one statement has parameters for, all in the caller’s transaction', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    const events = Array.from({ length: 12_000 }, (_, n) => ({
      type: n % 2 === 0 ? 'policy.approved' : 'policy.renewed',
      tenantId: `t${n % 3}`,
      aggregateType: `type${n}`,
      aggregateId: `p${n}`,
      actorId: `u${n}`,
      payload: { n },
      metadata: { k: n },
    }));
    await expect(
      db.transaction().execute(async (trx) => {
        await emitMany(trx, events);
        throw new Error('domain write failed');
      }),
    ).rejects.toThrow('domain write failed');
    expect(await outboxRows()).toHaveLength(0);
    const ids = await db.transaction().execute((trx) => emitMany(trx, events));
    // Every column of every row as given: this many go through another statement than a few do.
    const stored = new Map((await outboxRows()).map((row) => [row.id, row]));
    expect(stored.size).toBe(12_000);
    const mismatched = ids.filter((id, n) => {
      const row = stored.get(id);
      const event = events[n]!;
      return (
        row === undefined ||
        row.event_type !== event.type ||
        row.tenant_id !== event.tenantId ||
        row.aggregate_type !== event.aggregateType ||
        row.aggregate_id !== event.aggregateId ||
        (row.payload as { n: number }).n !== n ||
        JSON.stringify(Object.entries(row.metadata as object).sort()) !== JSON.stringify([['actorId', event.actorId], ['k', n]])
      );
    });
    expect(mismatched).toEqual([]);
    await sql`DELETE FROM walflow.outbox`.execute(db);
  });

  it('writes them in one statement: they roll back with a BEGIN the caller sent on a connection of its own', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    const events = Array.from({ length: 12_000 }, (_, n) => ({ type: 'policy.approved', payload: { n } }));
    await db.connection().execute(async (connection) => {
      await sql`BEGIN`.execute(connection);
      await emitMany(connection, events);
      await sql`ROLLBACK`.execute(connection);
    });
    expect(await outboxRows()).toHaveLength(0);
  });

  it('keeps their order, and takes the session tenant for those without one, past one statement’s parameters', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    // A row trigger numbers the rows in the order the statement inserts them, the order the WAL holds them in.
    await sql`CREATE TABLE public.insert_order (seq bigserial, id uuid)`.execute(db);
    await sql`CREATE FUNCTION public.note_insert_order() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN INSERT INTO public.insert_order (id) VALUES (NEW.id); RETURN NEW; END $$`.execute(db);
    await sql`CREATE TRIGGER note_insert_order AFTER INSERT ON walflow.outbox FOR EACH ROW EXECUTE FUNCTION public.note_insert_order()`.execute(db);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query("SET walflow.tenant_id = 't6'");
      const events = Array.from({ length: 12_000 }, (_, n) => ({ type: 'policy.approved', ...(n % 2 === 0 ? { tenantId: 't5' } : {}), payload: { n, text: 'quote " backslash \\ é 😀', amount: 0.1 } }));
      const ids = await emitMany(client, events);
      const { rows } = await sql<{ id: string; tenant_id: string; n: number; text: string; amount: string }>`
        SELECT id, tenant_id, (payload->>'n')::int AS n, payload->>'text' AS text, payload->>'amount' AS amount FROM walflow.outbox ORDER BY n`.execute(db);
      expect(rows.map((row) => row.id)).toEqual(ids);
      expect(rows.every((row, n) => row.n === n && row.tenant_id === (n % 2 === 0 ? 't5' : 't6'))).toBe(true);
      expect(rows[0]).toMatchObject({ text: 'quote " backslash \\ é 😀', amount: '0.1' });
      const inserted = await sql<{ id: string }>`SELECT id FROM public.insert_order ORDER BY seq`.execute(db);
      expect(inserted.rows.map((row) => row.id)).toEqual(ids);
    } finally {
      await client.end();
      await sql`DROP TRIGGER note_insert_order ON walflow.outbox`.execute(db);
      await sql`DROP FUNCTION public.note_insert_order()`.execute(db);
      await sql`DROP TABLE public.insert_order`.execute(db);
      await sql`DELETE FROM walflow.outbox`.execute(db);
    }
  });

  it('refuses, writing nothing, more than one statement takes, and takes the default tenant without a session tenant', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    const large = 'x'.repeat(14_000);
    const tooMany = Array.from({ length: 10_000 }, (_, n) => ({ type: 'policy.approved', payload: { n, large } }));
    await expect(emitMany(db, tooMany)).rejects.toMatchObject({ code: 'payload_invalid', message: expect.stringMatching(/more than one statement takes .*several calls inside your transaction/) });
    expect(await outboxRows()).toHaveLength(0);
    const ids = await emitMany(db, tooMany.slice(0, 9_500).map((event) => ({ ...event, payload: { n: event.payload.n } })));
    const { rows } = await sql<{ tenant_id: string }>`SELECT DISTINCT tenant_id FROM walflow.outbox`.execute(db);
    expect(rows).toEqual([{ tenant_id: 'default' }]);
    expect(ids).toHaveLength(9_500);
    await sql`DELETE FROM walflow.outbox`.execute(db);
  });

  it('writes them all or none through a Kysely instance too, whose statements would otherwise commit one by one', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    // The last event, in the second statement, fails in the database.
    await sql`CREATE FUNCTION public.refuse_marked_event() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN IF NEW.payload ? 'refuse' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`.execute(db);
    await sql`CREATE TRIGGER refuse_marked_event BEFORE INSERT ON walflow.outbox FOR EACH ROW EXECUTE FUNCTION public.refuse_marked_event()`.execute(db);
    try {
      const events = Array.from({ length: 12_000 }, (_, n) => ({ type: 'policy.approved', payload: n === 11_999 ? { n, refuse: true } : { n } }));
      await expect(emitMany(db, events)).rejects.toThrow('refused by the test');
      expect(await outboxRows()).toHaveLength(0);
    } finally {
      await sql`DROP TRIGGER refuse_marked_event ON walflow.outbox`.execute(db);
      await sql`DROP FUNCTION public.refuse_marked_event()`.execute(db);
    }
  });
});

describe('emit writes only', () => {
  it('needs nothing but INSERT on the outbox: the row is never read back, its id is made by emit', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    const role = `emit_only_${Date.now()}`;
    await sql`CREATE ROLE ${sql.id(role)} LOGIN`.execute(db);
    await sql`GRANT USAGE ON SCHEMA walflow TO ${sql.id(role)}`.execute(db);
    await sql`GRANT INSERT ON walflow.outbox TO ${sql.id(role)}`.execute(db);
    await sql`CREATE POLICY ${sql.id(`${role}_insert`)} ON walflow.outbox FOR INSERT TO ${sql.id(role)} WITH CHECK (true)`.execute(db);
    const url = new URL(database.url);
    url.username = role;
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      await expect(client.query('SELECT id FROM walflow.outbox')).rejects.toMatchObject({ code: '42501' });
      await client.query('BEGIN');
      const id = await emit(client, { type: 'policy.approved', payload: { policyId: 'p1', premium: 1 } });
      const ids = await emitMany(client, [
        { type: 'policy.approved', payload: { policyId: 'p2', premium: 2 } },
        { type: 'policy.approved', payload: { policyId: 'p3', premium: 3 } },
      ]);
      await client.query('COMMIT');
      const stored = new Map((await outboxRows()).map((row) => [row.id, (row.payload as { policyId: string }).policyId]));
      expect([id, ...ids].map((each) => stored.get(each))).toEqual(['p1', 'p2', 'p3']);
    } finally {
      await client.end();
      await sql`DROP POLICY ${sql.id(`${role}_insert`)} ON walflow.outbox`.execute(db);
      await sql`DROP OWNED BY ${sql.id(role)}`.execute(db);
      await sql`DROP ROLE ${sql.id(role)}`.execute(db);
    }
  });

  it('gives ids that sort by the time of emit', async () => {
    const before = Date.now();
    const id = await emit(db, { type: 'policy.approved', payload: { policyId: 'p1', premium: 1 } });
    const millis = parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
    expect(millis).toBeGreaterThanOrEqual(before);
    expect(millis).toBeLessThanOrEqual(Date.now());
  });

  it('takes the session tenant for events without one, in one statement with events naming theirs', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query("SET walflow.tenant_id = 't5'");
      const [named, unnamed] = await emitMany(client, [
        { type: 'policy.approved', tenantId: 't5', payload: { policyId: 'p1', premium: 1 } },
        { type: 'policy.approved', payload: { policyId: 'p2', premium: 2 } },
      ]);
      const single = await emit(client, { type: 'policy.approved', payload: { policyId: 'p3', premium: 3 } });
      const tenants = new Map((await outboxRows()).map((row) => [row.id, row.tenant_id]));
      expect([named, unnamed, single].map((id) => tenants.get(id!))).toEqual(['t5', 't5', 't5']);
    } finally {
      await client.end();
    }
  });
});

describe('walflow.emit (SQL)', () => {
  it('inserts an outbox row and keeps causal metadata to walflow', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    const { rows } = await sql<{ id: string }>`
      SELECT walflow.emit('policy.approved', '{"policyId":"p9"}', 'policy', 'p9', 't2', '{"actorId":"u1","depth":99,"causationId":"x"}') AS id`.execute(db);
    const [row] = await outboxRows();
    expect(row).toMatchObject({ id: rows[0]?.id, tenant_id: 't2', aggregate_id: 'p9', metadata: { actorId: 'u1' } });
  });

  it('defaults the tenant and rejects a payload that is not an object', async () => {
    await sql`DELETE FROM walflow.outbox`.execute(db);
    await sql`SELECT walflow.emit('policy.approved', '{}')`.execute(db);
    expect((await outboxRows())[0]?.tenant_id).toBe('default');
    await expect(sql`SELECT walflow.emit('policy.approved', '[1]')`.execute(db)).rejects.toThrow(/must be a JSON object/);
    await expect(sql`SELECT walflow.emit('bad type!', '{}')`.execute(db)).rejects.toThrow(/check constraint/);
  });
});
