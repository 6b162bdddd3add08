import type { EventEnvelope } from '@walflow/core';
import type { WorkflowPolicy } from '../compile-workflow.js';
import type { StoredWorkflow } from '../workflow-store.js';
import type { ResolveHost } from './address-guard.js';

/**
 * What the process is configured with for actions: for those that talk to the outside world (mail, HTTP), and the
 * operator's policy, which each run's workflow is checked against again when it executes (a target taken off
 * WALFLOW_UPDATE_FIELDS is no longer written by workflows applied before).
 */
export interface ActionRuntime extends WorkflowPolicy {
  /** SMTP for send_email; without it send_email fails with an error that says so. */
  smtp?: { host: string; port: number; secure?: boolean; user?: string; password?: string; from: string } | undefined;
  /** Secret values by name: workflows reference them (`{ "secret": "NAME" }`), never contain them. */
  secrets: ReadonlyMap<string, string>;
  /** Standard Webhooks signing secret (`whsec_…`) used for every webhook. */
  webhookSigningSecret?: string | undefined;
  /** Hosts or IP addresses a webhook may call although they are private, loopback or link-local. */
  webhookAllowHosts: readonly string[];
  /** @default 10000 */
  actionTimeoutMs?: number | undefined;
  /** How webhook hosts are resolved (default: the system's resolver); tests pass their own to stay off the network. */
  resolveHost?: ResolveHost | undefined;
}

export interface ExternalActionContext {
  event: EventEnvelope;
  workflow: StoredWorkflow;
  runId: string;
  actionIndex: number;
  /** Stable across retries of the same action: `${runId}:${actionIndex}`. */
  idempotencyKey: string;
  /** Aborted when the action's timeout passes. */
  signal: AbortSignal;
  runtime: ActionRuntime;
}

/**
 * An action with a side effect outside PostgreSQL (mail, HTTP). It runs outside the database transaction;
 * its outcome is recorded afterwards, keyed by (run, action index), so a retry skips it once it succeeded.
 * Side effects are therefore at-least-once; the idempotency key lets the receiver deduplicate.
 */
export interface ExternalAction<Action> {
  execute(action: Action, context: ExternalActionContext): Promise<Record<string, unknown>>;
}
