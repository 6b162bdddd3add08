import { WalflowError, type EmitEvent, type EventCatalog, type EventDefinition, type PayloadOf } from '@walflow/core';
import { emit, emitMany } from './emit.js';
import type { OutboxWriter } from './outbox-writer.js';

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
