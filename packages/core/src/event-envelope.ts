import type { Lsn } from './lsn.js';

/**
 * Metadata travels with an event. Applications set `actorId`; walflow sets the causal fields when an action
 * emits an event, so a chain of events can be followed and a loop can be stopped.
 */
export interface EventMetadata {
  actorId?: string;
  /** The first event of a causal chain. */
  correlationId?: string;
  /** The event whose workflow run emitted this one. */
  causationId?: string;
  /** How many workflow runs separate this event from the application write that started the chain. */
  depth?: number;
  workflowId?: string;
  runId?: string;
  /** The replay whose run emitted the chain's first caused event, carried down the chain. */
  replayId?: string;
  [key: string]: unknown;
}

/** What application code hands to `emit()`. */
export interface EmitEvent<Type extends string = string, Payload = Record<string, unknown>> {
  type: Type;
  payload: Payload;
  /** @default the session's `walflow.tenant_id` setting, else 'default' */
  tenantId?: string;
  aggregateType?: string;
  aggregateId?: string;
  actorId?: string;
  /**
   * The application's own metadata (conditions read it as `event.metadata`), as `walflow.emit`'s `metadata`
   * argument. The causal keys (CAUSAL_METADATA_KEYS) are walflow's and refused; `actorId` above wins over one here.
   */
  metadata?: Record<string, unknown>;
}

/**
 * The events a run emits about itself, whatever its workflow says: a mail sent, a mail that failed for good, its
 * workflow paused after deaths. An application's catalog need not list them.
 */
export const RUN_EVENT_TYPES = { emailSent: 'email.sent', emailFailed: 'email.failed', workflowAutoPaused: 'workflow.auto_paused' } as const;

/** Whether walflow's own run wrote this event: one of RUN_EVENT_TYPES, with the runId only walflow may set. */
export function isRunEvent(type: string, metadata: EventMetadata): boolean {
  return Object.values<string>(RUN_EVENT_TYPES).includes(type) && typeof metadata.runId === 'string';
}

/** Metadata keys only walflow sets, on the events its actions emit: an application may not (migration 0034). */
export const CAUSAL_METADATA_KEYS = ['correlationId', 'causationId', 'depth', 'workflowId', 'runId', 'replayId'] as const;

/** Where an event sits in the WAL: fixed by the commit, identical on every redelivery. */
export interface CommitPosition {
  xid: string;
  /** LSN of the commit record of the transaction that wrote the outbox row. */
  commitLsn: Lsn;
  /** Commit time from the WAL, ISO-8601 with microseconds (JavaScript dates keep only milliseconds). */
  committedAt: string;
}

/** A committed event as walflow records it; the names match `walflow.events` columns and CEL variables. */
export interface EventEnvelope extends CommitPosition {
  /** The outbox row's id. */
  id: string;
  type: string;
  tenantId: string;
  aggregateType: string | null;
  aggregateId: string | null;
  payload: Record<string, unknown>;
  metadata: EventMetadata;
  /** Position of the event among the outbox rows of its transaction, from 0. */
  position: number;
  /**
   * The payload and metadata as the outbox row held them (JSON text), on events read from the outbox. The log
   * records this text rather than `payload` and `metadata` written out again: a decimal beyond a double's 15–17
   * digits, or its trailing zeros, stays as committed, and the hot path writes out no JSON.
   */
  payloadJson?: string;
  metadataJson?: string;
}

export const DEFAULT_TENANT = 'default';

/** Event types are dotted names such as `recruit.graduated_to_agent`. */
export const EVENT_TYPE_PATTERN = /^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/;
export const EVENT_TYPE_MAX_LENGTH = 200;

/**
 * The most bytes (UTF-8) a tenant, aggregate type or aggregate id may take, in emit and in the outbox's
 * constraints (migration 0028). The event log indexes them in pairs, (tenant_id, event_type, committed_at) and
 * (aggregate_type, aggregate_id, committed_at), and a btree index row holds about 2.7 kB: a longer pair was
 * refused at dispatch, after its write committed, where the event could only be parked.
 */
export const EVENT_IDENTIFIER_MAX_BYTES = 1000;

export function isValidEventType(type: string): boolean {
  return type.length <= EVENT_TYPE_MAX_LENGTH && EVENT_TYPE_PATTERN.test(type);
}

export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** How SQL matches an event type pattern: exact, or a `prefix.*` (and `*`) as LIKE with the prefix escaped. */
export function eventTypeCondition(pattern: string): { operator: '=' | 'like'; value: string } {
  if (!pattern.endsWith('*')) return { operator: '=', value: pattern };
  return { operator: 'like', value: `${pattern.slice(0, -1).replace(/[\\%_]/g, '\\$&')}%` };
}
