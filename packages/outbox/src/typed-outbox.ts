import { WalflowError, type EmitEvent, type EventCatalog, type EventDefinition, type PayloadOf } from '@walflow/core';
import { objectJson } from './object-json.js';
import { insertOutboxRows } from './outbox-insert.js';
import { applicationMetadata, toOutboxRow, toOutboxRows } from './outbox-row.js';
import type { OutboxWriter } from './outbox-writer.js';

/** A catalog's typed emitters: event names and payloads are checked at compile time and validated at run time. */
export interface TypedOutbox<Definitions extends EventDefinition> {
  emit<Type extends Definitions['name']>(writer: OutboxWriter, event: TypedEvent<Definitions, Type>): Promise<string>;
  emitMany(writer: OutboxWriter, events: readonly AnyTypedEvent<Definitions>[]): Promise<string[]>;
}

export type TypedEvent<Definitions extends EventDefinition, Type extends Definitions['name']> = Omit<EmitEvent<Type>, 'payload'> & {
  payload: PayloadOf<Definitions, Type>;
};

/** Any one of a catalog's events, its payload typed by its own `type` (a union over the names, not a union payload). */
export type AnyTypedEvent<Definitions extends EventDefinition> = {
  [Type in Definitions['name']]: TypedEvent<Definitions, Type>;
}[Definitions['name']];

export function createOutbox<Definitions extends EventDefinition>(catalog: EventCatalog<Definitions>): TypedOutbox<Definitions> {
  const toRow = (event: EmitEvent) =>
    toOutboxRow(event, applicationMetadata(event), (payload, subject) => cataloguedJson(catalog, event.type, payload, subject));
  return {
    emit: async (writer, event) => {
      const [id] = await insertOutboxRows(writer, [toRow(event as EmitEvent)]);
      return id as string;
    },
    emitMany: (writer, events) => insertOutboxRows(writer, toOutboxRows(events as readonly EmitEvent[], toRow)),
  };
}

/**
 * The JSON text a typed event stores: the payload as the application gave it, validated as the consumer will
 * validate it, after its JSON round trip (a Date passes z.date() here and is a string there). The schema's output
 * is not stored: a plain z.object() strips keys it does not list, which SQL writers and untyped emit() keep.
 */
function cataloguedJson(catalog: EventCatalog, type: string, payload: unknown, subject: string): string {
  const json = objectJson(payload, subject);
  const check = catalog.check(type, JSON.parse(json) as unknown);
  if (!check.ok) throw new WalflowError(check.code, check.reason);
  return json;
}
