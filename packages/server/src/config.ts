import type { DecoderChoice } from '@walflow/cdc';
import { WalflowError } from '@walflow/core';
import { SUBJECT_TEMPLATE_PATTERN, type NatsSinkSettings } from '@walflow/nats-sink';
import { z } from 'zod';
import type { HealthThresholds } from './health-report.js';
import { CONNECT_TIMEOUT_PROBLEM, hasValidConnectTimeout } from './connection-config.js';
import { PROCESS_ROLES, type ProcessRole } from './process-role.js';
import { parseConsoleSettings, type ConsoleSettings } from './console/console-settings.js';
import { unknownVariables, type UnknownVariable } from './unknown-variables.js';

function list(item: RegExp, what: string) {
  return z
    .string()
    .transform((value) => value.split(',').map((entry) => entry.trim()).filter((entry) => entry.length > 0))
    .refine((entries) => entries.every((entry) => item.test(entry)), `must be a comma-separated list of ${what}`);
}

/** Digits only: a number coerced from text took `0x1F90`, `1e1` and `0b101` too. */
const integer = (min: number, max: number) => {
  const range = `must be a whole number from ${min} to ${max}`;
  return z.string().trim().regex(/^\d+$/, range).transform(Number).pipe(z.number().min(min, range).max(max, range));
};

const GIB = 1024 ** 3;

/** Every setting walflow reads from the environment; nothing else in walflow reads process.env. */
const environmentSchema = z.object({
  DATABASE_URL: z
    .string({ error: 'is required (for example postgres://user:password@localhost:5432/app)' })
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .refine(hasValidConnectTimeout, CONNECT_TIMEOUT_PROBLEM),
  WALFLOW_SLOT: z
    .string()
    .regex(/^[a-z0-9_]{1,63}$/, 'must be 1-63 lower-case letters, digits or underscores')
    .default('walflow'),
  WALFLOW_DECODER: z.enum(['auto', 'wal2json', 'pgoutput']).default('auto'),
  // Default 8787; set or not, it also decides whether a worker serves HTTP (partsOf).
  WALFLOW_HTTP_PORT: integer(0, 65535).optional(),
  // Default: 127.0.0.1 while the console is on, else 0.0.0.0.
  WALFLOW_HTTP_HOST: z.string().min(1).optional(),
  WALFLOW_HTTP_ALLOWED_HOSTS: list(/^[A-Za-z0-9.:_-]+$/, 'host names').default([]),
  WALFLOW_CATALOG: z.string().min(1).optional(),
  WALFLOW_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  WALFLOW_ROLE: z.enum(PROCESS_ROLES).default('all'),
  WALFLOW_WORKER_CONCURRENCY: integer(0, 256).default(4),
  WALFLOW_WORKER_POLL_MS: integer(10, 600_000).default(1000),
  WALFLOW_WORKER_LEASE_MS: integer(100, 86_400_000).default(60_000),
  WALFLOW_WORKER_CLAIM_BATCH: integer(1, 1000).default(200),
  WALFLOW_MAX_DEPTH: integer(1, 1000).default(8),
  WALFLOW_BATCH_SIZE: integer(1, 100_000).default(5000),
  WALFLOW_SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL')
    .refine((value) => URL.canParse(value), 'must be an smtp:// or smtps:// URL')
    .optional(),
  WALFLOW_SMTP_FROM: z.string().min(3).optional(),
  WALFLOW_WEBHOOK_SECRET: z.string().regex(/^whsec_[A-Za-z0-9+/=]+$/, 'must be a Standard Webhooks secret (whsec_…)').optional(),
  WALFLOW_WEBHOOK_ALLOW_HOSTS: list(/^[A-Za-z0-9.:_-]+$/, 'host names or IP addresses').default([]),
  WALFLOW_UPDATE_FIELDS: list(/^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*(@[a-z_][a-z0-9_]*)?$/, 'schema.table.column entries, each optionally @tenant_column')
    .refine((entries) => new Set(entries.map((entry) => entry.split('@')[0])).size === entries.length, 'names a column twice (once with a tenant column, say): name each once')
    .default([]),
  WALFLOW_ACTION_TIMEOUT_MS: integer(100, 600_000).default(10_000),
  WALFLOW_SHUTDOWN_GRACE_MS: integer(0, 3_600_000).default(30_000),
  WALFLOW_CONSOLE_BACKTEST_TIMEOUT_MS: integer(1_000, 3_600_000).default(60_000),
  WALFLOW_CONSOLE_SECURE_COOKIES: z.enum(['true', 'false'], { error: 'must be true or false' }).default('false'),
  WALFLOW_HEARTBEAT_MS: integer(100, 3_600_000).default(30_000),
  WALFLOW_STANDBY_POLL_MS: integer(50, 600_000).default(1000),
  WALFLOW_DOWN_RECHECK_MS: integer(50, 3_600_000).default(10_000),
  WALFLOW_RETENTION_DAYS: integer(1, 36_500).default(30),
  WALFLOW_OPERATOR: z.string().min(1).max(200).optional(),
  WALFLOW_HEALTH_LAG_SECONDS_DEGRADED: integer(0, 31_536_000).default(60),
  WALFLOW_HEALTH_LAG_SECONDS_DOWN: integer(0, 31_536_000).default(600),
  WALFLOW_HEALTH_LAG_BYTES_DEGRADED: integer(0, Number.MAX_SAFE_INTEGER).default(GIB),
  WALFLOW_HEALTH_LAG_BYTES_DOWN: integer(0, Number.MAX_SAFE_INTEGER).default(16 * GIB),
  WALFLOW_HEALTH_QUEUED_SECONDS_DEGRADED: integer(0, 31_536_000).default(300),
  WALFLOW_HEALTH_DEAD_RUNS_DEGRADED: integer(1, Number.MAX_SAFE_INTEGER).default(1),
  WALFLOW_HEALTH_DEAD_LETTERS_DEGRADED: integer(1, Number.MAX_SAFE_INTEGER).default(1),
  WALFLOW_HEALTH_RECONNECTING_SECONDS_DOWN: integer(1, 31_536_000).default(300),
  WALFLOW_NATS_URL: list(/^((nats|tls|ws|wss):\/\/)?[^\s/]+$/, 'NATS server URLs (nats://host:4222)')
    .refine((servers) => servers.length > 0, 'must name at least one NATS server')
    .optional(),
  WALFLOW_NATS_SUBJECT: z
    .string()
    .regex(SUBJECT_TEMPLATE_PATTERN, 'must be dot-separated tokens of letters, digits, _ or - and {tenant}, {type}, {aggregateType}, {aggregateId} (one in a token at most), starting with a literal token')
    .default('walflow.{tenant}.{type}'),
  WALFLOW_NATS_STREAM: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, _ or -').default('WALFLOW'),
  WALFLOW_NATS_MAX_AGE_SECONDS: integer(0, 315_360_000).default(7 * 86_400),
  WALFLOW_NATS_DUPLICATE_WINDOW_SECONDS: integer(1, 315_360_000).default(3600),
}).superRefine((env, context) => {
  // A degraded threshold above its down threshold would never be reported: the state goes straight to down.
  for (const measure of ['SECONDS', 'BYTES'] as const) {
    const degraded = `WALFLOW_HEALTH_LAG_${measure}_DEGRADED` as const;
    const down = `WALFLOW_HEALTH_LAG_${measure}_DOWN` as const;
    // A threshold refused already has its own message; comparing it would only add a second one.
    if (context.issues.some((issue) => issue.path?.[0] === degraded || issue.path?.[0] === down)) continue;
    if (env[degraded] > env[down]) context.addIssue({ code: 'custom', path: [degraded], message: `must not exceed ${down} (${env[down]})` });
  }
});

/** Secrets that workflows reference by name (`{ "secret": "CRM_TOKEN" }`) come from WALFLOW_SECRET_<NAME>. */
const SECRET_PREFIX = 'WALFLOW_SECRET_';
const DEFAULT_HTTP_PORT = 8787;
/** Read apart from environmentSchema, by parseConsoleSettings. */
const CONSOLE_TOKEN_VARIABLES = ['WALFLOW_CONSOLE_TOKEN', 'WALFLOW_CONSOLE_TOKENS'] as const;

export interface WalflowConfig {
  databaseUrl: string;
  slotName: string;
  /** Output plugin of a new slot (`auto`: wal2json when the server has it, else pgoutput); a slot keeps its plugin. */
  decoder: DecoderChoice;
  httpPort: number;
  /** Whether WALFLOW_HTTP_PORT was set: a worker serves HTTP only then. */
  httpPortChosen: boolean;
  httpHost: string;
  /**
   * Host names /health and /metrics answer besides loopback ones; any given turns the Host check on, whatever the
   * bound address.
   */
  httpAllowedHosts: readonly string[];
  /** The operator console under /console: on only with WALFLOW_CONSOLE_TOKEN. */
  console: ConsoleSettings | undefined;
  /** How long a console backtest may take before it stops, freeing its connection. */
  consoleBacktestTimeoutMs: number;
  /** Every console cookie `Secure`, for a TLS proxy that does not say so with X-Forwarded-Proto. */
  consoleSecureCookies: boolean;
  /** Module exporting the event catalog (`catalog` or default export); without it any object payload is accepted. */
  catalogModule: string | undefined;
  logLevel: z.output<typeof environmentSchema>['WALFLOW_LOG_LEVEL'];
  /** What `walflow start` runs (`--role` overrides it). */
  role: ProcessRole;
  workerConcurrency: number;
  workerPollMs: number;
  /** How long a run stays with a worker that stopped answering before another takes it over. */
  workerLeaseMs: number;
  /** Runs a worker claims at once; those that only write to the database execute in one transaction. */
  workerClaimBatch: number;
  maxDepth: number;
  batchSize: number;
  smtp: { host: string; port: number; secure: boolean; user?: string; password?: string; from: string } | undefined;
  webhookSigningSecret: string | undefined;
  webhookAllowHosts: string[];
  /** `schema.table.column` entries update_field may write. */
  updateFields: string[];
  actionTimeoutMs: number;
  /** How long SIGTERM waits for running actions before the process exits (their leases then expire). */
  shutdownGraceMs: number;
  heartbeatMs: number;
  standbyPollMs: number;
  /** How often a consumer that is down (slot lost, wrong server) checks whether it was repaired. */
  downRecheckMs: number;
  /** Events, decisions and finished runs older than this many days are pruned once a day. */
  retentionDays: number;
  /** Who the audit log names for CLI actions; default `user@host`. */
  operator: string | undefined;
  /** Where `/health` turns degraded or down. */
  healthThresholds: HealthThresholds;
  /** Secret values by name; never logged or shown. */
  secrets: ReadonlyMap<string, string>;
  /** `WALFLOW_*` variables walflow does not read, most likely misspelt; `walflow start` warns of each. */
  unknownVariables: readonly UnknownVariable[];
  /** The NATS JetStream sink; off unless WALFLOW_NATS_URL is set. */
  natsSink: NatsSinkSettings | undefined;
}

/** Reads the configuration; a bad value fails with every offending variable named. */
export function loadConfig(environment: Record<string, string | undefined>): WalflowConfig {
  // An empty or blank variable means "not set", as in most shells' `VAR= command`.
  const present = Object.fromEntries(Object.entries(environment).filter(([, value]) => value !== undefined && value.trim() !== ''));
  const result = environmentSchema.safeParse(present);
  const consoleSettings = parseConsoleSettings(present[CONSOLE_TOKEN_VARIABLES[0]], present[CONSOLE_TOKEN_VARIABLES[1]]);
  if (!result.success || consoleSettings.problems.length > 0) {
    const problems = [...(result.success ? [] : result.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`)), ...consoleSettings.problems];
    throw new WalflowError('config_invalid', `invalid configuration: ${problems.join('; ')}`, { details: { problems } });
  }
  const env = result.data;
  const secrets = new Map(
    Object.entries(present)
      .filter(([name]) => name.startsWith(SECRET_PREFIX) && name.length > SECRET_PREFIX.length)
      .map(([name, value]) => [name.slice(SECRET_PREFIX.length), value as string]),
  );
  return {
    databaseUrl: env.DATABASE_URL,
    slotName: env.WALFLOW_SLOT,
    decoder: env.WALFLOW_DECODER,
    httpPort: env.WALFLOW_HTTP_PORT ?? DEFAULT_HTTP_PORT,
    httpPortChosen: env.WALFLOW_HTTP_PORT !== undefined,
    httpHost: env.WALFLOW_HTTP_HOST ?? (consoleSettings.settings === undefined ? '0.0.0.0' : '127.0.0.1'),
    httpAllowedHosts: env.WALFLOW_HTTP_ALLOWED_HOSTS,
    console: consoleSettings.settings,
    consoleBacktestTimeoutMs: env.WALFLOW_CONSOLE_BACKTEST_TIMEOUT_MS,
    consoleSecureCookies: env.WALFLOW_CONSOLE_SECURE_COOKIES === 'true',
    catalogModule: env.WALFLOW_CATALOG,
    logLevel: env.WALFLOW_LOG_LEVEL,
    role: env.WALFLOW_ROLE,
    workerConcurrency: env.WALFLOW_WORKER_CONCURRENCY,
    workerPollMs: env.WALFLOW_WORKER_POLL_MS,
    workerLeaseMs: env.WALFLOW_WORKER_LEASE_MS,
    workerClaimBatch: env.WALFLOW_WORKER_CLAIM_BATCH,
    maxDepth: env.WALFLOW_MAX_DEPTH,
    batchSize: env.WALFLOW_BATCH_SIZE,
    smtp: smtpSettings(env.WALFLOW_SMTP_URL, env.WALFLOW_SMTP_FROM),
    webhookSigningSecret: env.WALFLOW_WEBHOOK_SECRET,
    webhookAllowHosts: env.WALFLOW_WEBHOOK_ALLOW_HOSTS,
    updateFields: env.WALFLOW_UPDATE_FIELDS,
    actionTimeoutMs: env.WALFLOW_ACTION_TIMEOUT_MS,
    shutdownGraceMs: env.WALFLOW_SHUTDOWN_GRACE_MS,
    heartbeatMs: env.WALFLOW_HEARTBEAT_MS,
    standbyPollMs: env.WALFLOW_STANDBY_POLL_MS,
    downRecheckMs: env.WALFLOW_DOWN_RECHECK_MS,
    retentionDays: env.WALFLOW_RETENTION_DAYS,
    operator: env.WALFLOW_OPERATOR,
    healthThresholds: {
      lagSecondsDegraded: env.WALFLOW_HEALTH_LAG_SECONDS_DEGRADED,
      lagSecondsDown: env.WALFLOW_HEALTH_LAG_SECONDS_DOWN,
      lagBytesDegraded: env.WALFLOW_HEALTH_LAG_BYTES_DEGRADED,
      lagBytesDown: env.WALFLOW_HEALTH_LAG_BYTES_DOWN,
      queuedSecondsDegraded: env.WALFLOW_HEALTH_QUEUED_SECONDS_DEGRADED,
      deadRunsDegraded: env.WALFLOW_HEALTH_DEAD_RUNS_DEGRADED,
      deadLettersDegraded: env.WALFLOW_HEALTH_DEAD_LETTERS_DEGRADED,
      reconnectingSecondsDown: env.WALFLOW_HEALTH_RECONNECTING_SECONDS_DOWN,
    },
    secrets,
    unknownVariables: unknownVariables(present, [...Object.keys(environmentSchema.shape), ...CONSOLE_TOKEN_VARIABLES], [SECRET_PREFIX]),
    natsSink: natsSinkSettings(env),
  };
}

/**
 * Why these settings would let a worker lose its runs although it is well, or undefined. A database action runs in
 * a transaction that holds its run's row, and extending the run's lease waits for that row. The worker extends
 * every third of a lease and gives the run up a lease after the last extension that held, so an action that
 * starts as an extension is due and waits on a lock for more than two thirds of the lease (it may wait up to
 * WALFLOW_ACTION_TIMEOUT_MS) outlasts it: the worker then abandons the run's next action as if it had died (on a
 * last attempt, the run ends dead with `worker lease expired`).
 */
export function leaseShorterThanActions(config: Pick<WalflowConfig, 'workerLeaseMs' | 'actionTimeoutMs'>): string | undefined {
  if (config.workerLeaseMs * 2 > config.actionTimeoutMs * 3) return undefined;
  return (
    `WALFLOW_WORKER_LEASE_MS (${config.workerLeaseMs}) is not longer than one and a half times WALFLOW_ACTION_TIMEOUT_MS (${config.actionTimeoutMs}): ` +
    'a database action of a leased run that waits on a lock that long can outlast its lease, and the run is then abandoned as if its worker had died'
  );
}

function smtpSettings(url: string | undefined, from: string | undefined): WalflowConfig['smtp'] {
  if (url === undefined) return undefined;
  const parsed = new URL(url);
  const secure = parsed.protocol === 'smtps:';
  return {
    host: parsed.hostname,
    port: parsed.port === '' ? (secure ? 465 : 587) : Number(parsed.port),
    secure,
    ...(parsed.username === '' ? {} : { user: decodeURIComponent(parsed.username) }),
    ...(parsed.password === '' ? {} : { password: decodeURIComponent(parsed.password) }),
    from: from ?? `walflow@${parsed.hostname}`,
  };
}

function natsSinkSettings(env: z.output<typeof environmentSchema>): NatsSinkSettings | undefined {
  if (env.WALFLOW_NATS_URL === undefined) return undefined;
  const maxAgeSeconds = env.WALFLOW_NATS_MAX_AGE_SECONDS;
  const duplicateWindowSeconds = env.WALFLOW_NATS_DUPLICATE_WINDOW_SECONDS;
  // JetStream refuses a stream whose duplicate window outlasts its messages.
  if (maxAgeSeconds > 0 && duplicateWindowSeconds > maxAgeSeconds) {
    const problem = `WALFLOW_NATS_DUPLICATE_WINDOW_SECONDS (${duplicateWindowSeconds}) must not exceed WALFLOW_NATS_MAX_AGE_SECONDS (${maxAgeSeconds})`;
    throw new WalflowError('config_invalid', `invalid configuration: ${problem}`, { details: { problems: [problem] } });
  }
  return { servers: env.WALFLOW_NATS_URL, subject: env.WALFLOW_NATS_SUBJECT, stream: env.WALFLOW_NATS_STREAM, maxAgeSeconds, duplicateWindowSeconds };
}
