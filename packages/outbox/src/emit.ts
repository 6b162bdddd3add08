import {
  isJsonObject,
  isValidEventType,
  WalflowError,
  type EmitEvent,
  type EventCatalog,
  type EventDefinition,
  type EventMetadata,
  type PayloadOf,
  uuidV7,
} from '@walflow/core';
import { CompiledQuery, type Kysely } from 'kysely';

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
  id: string;
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
    id: uuidV7(),
    tenant_id: event.tenantId,
    event_type: event.type,
    aggregate_type: event.aggregateType ?? null,
    aggregate_id: event.aggregateId ?? null,
    payload: JSON.stringify(event.payload),
    metadata: JSON.stringify(cleaned),
  };
}

/**
 * The SQL text is built by hand, not compiled by Kysely: emit sits in the application's hottest transactions,
 * where the per-call compile and RETURNING showed in `pnpm bench` (write overhead). One statement for all rows;
 * a row without a tenant takes the column default. No RETURNING: the ids are made here, so the row is never read
 * back, and for walflow_app the SELECT policy (a SECURITY DEFINER lookup per row, about 60 µs) no longer runs.
 */
async function insertOutboxRows(writer: OutboxWriter, rows: OutboxRow[]): Promise<string[]> {
  if (rows.length === 0) return [];
  const values: unknown[] = [];
  const parameter = (value: unknown): string => {
    values.push(value);
    return `$${values.length}`;
  };
  const tuples = rows.map((row) => {
    const tenant = row.tenant_id === undefined ? 'DEFAULT' : parameter(row.tenant_id);
    return `(${parameter(row.id)}, ${parameter(row.event_type)}, ${parameter(row.aggregate_type)}, ${parameter(row.aggregate_id)}, ${parameter(row.payload)}::jsonb, ${parameter(row.metadata)}::jsonb, ${tenant})`;
  });
  const text = `INSERT INTO walflow.outbox (id, event_type, aggregate_type, aggregate_id, payload, metadata, tenant_id) VALUES ${tuples.join(', ')}`;
  if (isKysely(writer)) await writer.executeQuery(CompiledQuery.raw(text, values));
  else await writer.query(text, values);
  return rows.map((row) => row.id);
}

function isKysely(writer: OutboxWriter): writer is Exclude<OutboxWriter, PgQueryable> {
  return typeof (writer as Partial<Kysely<never>>).executeQuery === 'function';
}
