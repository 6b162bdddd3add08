import { Environment } from '@marcbachmann/cel-js';
import type { EventEnvelope } from '@walflow/core';
import { EVENT_VARIABLE, templateScope } from '../event-scope.js';

/**
 * The one variable an expression sees. Declaring its fields (rather than a plain map) lets the type check
 * refuse `event.tenantID` or `event.type + 1` when the workflow is applied. The aggregate fields may be null,
 * so they are `dyn`; payload and metadata are JSON objects, whose numbers are CEL doubles.
 */
const EVENT_SCHEMA = {
  id: 'string',
  type: 'string',
  tenantId: 'string',
  aggregateType: 'dyn',
  aggregateId: 'dyn',
  payload: 'map<string, dyn>',
  metadata: 'map<string, dyn>',
  committedAt: 'google.protobuf.Timestamp',
} as const;


const environments = new Map<number, Environment>();

/** Building an environment is expensive, so there is one per depth limit (in practice only the default). */
export function celEnvironment(maxDepth: number): Environment {
  let environment = environments.get(maxDepth);
  if (environment === undefined) {
    environment = new Environment({
      unlistedVariablesAreDyn: false,
      // Lets `event.payload.x in [1, 'one']` through; values from JSON are mixed anyway.
      homogeneousAggregateLiterals: false,
      enableOptionalTypes: false,
      limits: { maxDepth },
    }).registerVariable({ name: EVENT_VARIABLE, schema: EVENT_SCHEMA });
    environments.set(maxDepth, environment);
  }
  return environment;
}

/**
 * The CEL activation for one event: the same fields as templates, except that `committedAt` is a CEL
 * timestamp (a JavaScript Date, so only milliseconds of the WAL's microseconds survive) and compares with
 * `timestamp('…')` and `duration('…')`.
 */
export function celActivation(event: EventEnvelope): Record<string, unknown> {
  return { [EVENT_VARIABLE]: { ...templateScope(event), committedAt: new Date(event.committedAt) } };
}
