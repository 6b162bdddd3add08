import { WalflowError, type EmitEvent, type EventCatalog, type EventDefinition, type PayloadOf } from '@walflow/core';
import { objectJson } from './object-json.js';
import { insertOutboxRows } from './outbox-insert.js';
import { toOutboxRow } from './outbox-row.js';
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
    toOutboxRow(event, { actorId: event.actorId }, (payload, subject) => cataloguedJson(catalog, event.type, payload, subject));
  return {
    emit: async (writer, event) => {
      const [id] = await insertOutboxRows(writer, [toRow(event as EmitEvent)]);
      return id as string;
    },
    emitMany: (writer, events) => insertOutboxRows(writer, events.map((event) => toRow(event as EmitEvent))),
  };
}

/**
 * The JSON text a typed event stores. The consumer validates the stored JSON against the catalog, not the value
 * the application passed (a Date passes z.date() here and is a string there), so the payload's JSON round trip is
 * what is validated. The schema's output is what is stored, so its defaults reach the event; when that output
 * is not the text just validated, it is validated again as stored, since a transform may give what its own
 * schema refuses.
 */
function cataloguedJson(catalog: EventCatalog, type: string, payload: unknown, subject: string): string {
  const submitted = objectJson(payload, subject);
  const stored = objectJson(validated(catalog, type, JSON.parse(submitted) as unknown), subject);
  if (stored !== submitted) {
    validated(catalog, type, JSON.parse(stored) as unknown, '; that is the schema’s own output, which is stored and which the consumer checks again');
  }
  return stored;
}

function validated(catalog: EventCatalog, type: string, payload: unknown, note = ''): Record<string, unknown> {
  const check = catalog.check(type, payload);
  if (!check.ok) throw new WalflowError(check.code, `${check.reason}${note}`);
  return check.payload;
}
