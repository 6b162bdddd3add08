import {
  isJsonObject,
  isValidEventType,
  WalflowError,
  type EmitEvent,
  type EventCatalog,
  type EventDefinition,
  type EventMetadata,
  type PayloadOf,
} from '@walflow/core';
import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  sql,
  type CompiledQuery,
} from 'kysely';

/** A pg `Client` or `PoolClient` inside the caller's transaction. */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** Where emit writes: the caller's Kysely transaction (or Kysely instance), or a pg client. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any application database type is accepted
export type OutboxWriter = Kysely<any> | PgQueryable;

/** An event with the causal metadata only walflow itself may set (actions emitting events). */
export interface EmitWithMetadata extends EmitEvent {
  metadata?: EventMetadata;
}

// Compiles queries for pg clients without a connection of its own.
const compiler = new Kysely<never>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

/**
 * Writes one event to the outbox through the caller's transaction and returns its id. It never opens a
 * transaction of its own: the event commits, or rolls back, with the caller's write.
 */
export async function emit(writer: OutboxWriter, event: EmitEvent): Promise<string> {
  const [id] = await emitMany(writer, [event]);
  return id as string;
}

/** Writes several events in one statement; returns their ids in order. */
export async function emitMany(writer: OutboxWriter, events: readonly EmitEvent[]): Promise<string[]> {
  return insertOutboxRows(writer, events.map((event) => toRow(event, { actorId: event.actorId })));
}

/** For walflow's own actions: the event carries causal metadata (depth, causation, correlation). */
export async function emitCaused(writer: OutboxWriter, event: EmitWithMetadata): Promise<string> {
  const [id] = await insertOutboxRows(writer, [toRow(event, { ...event.metadata, actorId: event.actorId ?? event.metadata?.actorId })]);
  return id as string;
}

/** A catalog's typed emitters: event names and payloads are checked at compile time and validated at run time. */
export interface TypedOutbox<Definitions extends EventDefinition> {
  emit<Type extends Definitions['name']>(writer: OutboxWriter, event: TypedEvent<Definitions, Type>): Promise<string>;
  emitMany(writer: OutboxWriter, events: readonly TypedEvent<Definitions, Definitions['name']>[]): Promise<string[]>;
}

export type TypedEvent<Definitions extends EventDefinition, Type extends Definitions['name']> = Omit<EmitEvent<Type>, 'payload'> & {
  payload: PayloadOf<Definitions, Type>;
};

export function createOutbox<Definitions extends EventDefinition>(catalog: EventCatalog<Definitions>): TypedOutbox<Definitions> {
  const validate = (event: EmitEvent): EmitEvent => {
    const check = catalog.check(event.type, event.payload);
    if (!check.ok) throw new WalflowError(check.code, check.reason);
    return event;
  };
  return {
    emit: (writer, event) => emit(writer, validate(event as EmitEvent)),
    emitMany: (writer, events) => emitMany(writer, events.map((event) => validate(event as EmitEvent))),
  };
}

interface OutboxRow {
  /** Undefined: the column default, the session's walflow.tenant_id or 'default'. */
  tenant_id: string | undefined;
  event_type: string;
  aggregate_type: string | null;
  aggregate_id: string | null;
  payload: string;
  metadata: string;
}

function toRow(event: EmitEvent, metadata: EventMetadata): OutboxRow {
  if (typeof event.type !== 'string' || !isValidEventType(event.type)) {
    throw new WalflowError('payload_invalid', `invalid event type ${JSON.stringify(event.type)}: use a dotted name such as policy.approved`);
  }
  if (!isJsonObject(event.payload)) {
    throw new WalflowError('payload_invalid', `payload of ${event.type} must be a JSON object`);
  }
  const cleaned = Object.fromEntries(Object.entries(metadata).filter(([, value]) => value !== undefined));
  return {
    tenant_id: event.tenantId,
    event_type: event.type,
    aggregate_type: event.aggregateType ?? null,
    aggregate_id: event.aggregateId ?? null,
    payload: JSON.stringify(event.payload),
    metadata: JSON.stringify(cleaned),
  };
}

async function insertOutboxRows(writer: OutboxWriter, rows: OutboxRow[]): Promise<string[]> {
  if (rows.length === 0) return [];
  const query: CompiledQuery = sql`
    INSERT INTO walflow.outbox (tenant_id, event_type, aggregate_type, aggregate_id, payload, metadata)
    VALUES ${sql.join(
      rows.map(
        (row) =>
          sql`(${row.tenant_id === undefined ? sql`DEFAULT` : row.tenant_id}, ${row.event_type}, ${row.aggregate_type}, ${row.aggregate_id}, ${row.payload}::jsonb, ${row.metadata}::jsonb)`,
      ),
    )}
    RETURNING id`.compile(compiler);
  const result = isKysely(writer)
    ? await writer.executeQuery<{ id: string }>(query)
    : ((await writer.query(query.sql, [...query.parameters])) as { rows: { id: string }[] });
  return result.rows.map((row) => row.id);
}

function isKysely(writer: OutboxWriter): writer is Exclude<OutboxWriter, PgQueryable> {
  return typeof (writer as Partial<Kysely<never>>).executeQuery === 'function';
}
