import type { z } from 'zod';
import { WalflowError } from './errors.js';
import { isValidEventType } from './event-envelope.js';

export interface EventDefinition<Name extends string = string, Schema extends z.ZodType = z.ZodType> {
  readonly name: Name;
  readonly schema: Schema;
}

/** Declares one event type and the zod schema its payload must satisfy. */
export function defineEvent<const Name extends string, Schema extends z.ZodType<Record<string, unknown>>>(
  name: Name,
  schema: Schema,
): EventDefinition<Name, Schema> {
  if (!isValidEventType(name)) {
    throw new WalflowError('catalog_invalid', `invalid event type ${JSON.stringify(name)}: use a dotted name such as recruit.graduated_to_agent`);
  }
  return { name, schema };
}

export type PayloadCheck =
  | { ok: true; payload: Record<string, unknown> }
  | { ok: false; code: 'event_unknown' | 'payload_invalid'; reason: string };

export interface EventCatalog<Definitions extends EventDefinition = EventDefinition> {
  readonly definitions: readonly Definitions[];
  has(type: string): boolean;
  /** Validates a payload against its event's schema; never throws. */
  check(type: string, payload: unknown): PayloadCheck;
}

/** The payload an application passes for one event type of a catalog (the schema's input type). */
export type PayloadOf<Definitions extends EventDefinition, Type extends Definitions['name']> = z.input<
  Extract<Definitions, { name: Type }>['schema']
>;

export function defineCatalog<const Definitions extends EventDefinition[]>(
  ...definitions: Definitions
): EventCatalog<Definitions[number]> {
  const byName = new Map<string, EventDefinition>();
  for (const definition of definitions) {
    if (byName.has(definition.name)) {
      throw new WalflowError('catalog_invalid', `event type ${definition.name} is defined twice`);
    }
    byName.set(definition.name, definition);
  }
  return {
    definitions,
    has: (type) => byName.has(type),
    check(type, payload) {
      const definition = byName.get(type);
      if (!definition) return { ok: false, code: 'event_unknown', reason: `unknown event type ${type}` };
      let result;
      try {
        result = definition.schema.safeParse(payload);
      } catch (error) {
        // safeParse reports failed checks, but a transform or refinement that throws (or an async one) throws
        // through it: that is this payload's failure too, and must not stop the stream behind it.
        return { ok: false, code: 'payload_invalid', reason: `payload of ${type} is invalid: its schema threw ${error instanceof Error ? error.message : String(error)}` };
      }
      if (!result.success) {
        const issues = result.error.issues.map((issue) => `${issue.path.join('.') || '(payload)'}: ${issue.message}`);
        return { ok: false, code: 'payload_invalid', reason: `payload of ${type} is invalid: ${issues.join('; ')}` };
      }
      return { ok: true, payload: result.data as Record<string, unknown> };
    },
  };
}

/** Recognises a catalog exported by a module named in configuration. */
export function isEventCatalog(value: unknown): value is EventCatalog {
  return (
    typeof value === 'object' &&
    value !== null &&
    'definitions' in value &&
    Array.isArray(value.definitions) &&
    'check' in value &&
    typeof value.check === 'function' &&
    'has' in value &&
    typeof value.has === 'function'
  );
}
