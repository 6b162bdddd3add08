import { WalflowError } from '@walflow/core';
import { z } from 'zod';

const integer = (min: number, max: number) => z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(min).max(max);

/** Every setting walflow reads from the environment; nothing else in walflow reads process.env. */
const environmentSchema = z.object({
  DATABASE_URL: z
    .string({ error: 'is required (for example postgres://user:password@localhost:5432/app)' })
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL'),
  WALFLOW_SLOT: z
    .string()
    .regex(/^[a-z0-9_]{1,63}$/, 'must be 1-63 lower-case letters, digits or underscores')
    .default('walflow'),
  WALFLOW_HTTP_PORT: integer(0, 65535).default(8787),
  WALFLOW_HTTP_HOST: z.string().min(1).default('0.0.0.0'),
  WALFLOW_CATALOG: z.string().min(1).optional(),
  WALFLOW_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  WALFLOW_WORKER_CONCURRENCY: integer(0, 256).default(4),
  WALFLOW_WORKER_POLL_MS: integer(10, 600_000).default(1000),
  WALFLOW_WORKER_LEASE_MS: integer(100, 86_400_000).default(60_000),
  WALFLOW_MAX_DEPTH: integer(1, 1000).default(8),
  WALFLOW_BATCH_SIZE: integer(1, 100_000).default(5000),
});

export interface WalflowConfig {
  databaseUrl: string;
  slotName: string;
  httpPort: number;
  httpHost: string;
  /** Module exporting the event catalog (`catalog` or default export); without it any object payload is accepted. */
  catalogModule: string | undefined;
  logLevel: z.output<typeof environmentSchema>['WALFLOW_LOG_LEVEL'];
  workerConcurrency: number;
  workerPollMs: number;
  /** How long a run stays with a worker that stopped answering before another takes it over. */
  workerLeaseMs: number;
  maxDepth: number;
  batchSize: number;
}

/** Reads the configuration; a bad value fails with every offending variable named. */
export function loadConfig(environment: Record<string, string | undefined>): WalflowConfig {
  // An empty variable means "not set", as in most shells' `VAR= command`.
  const present = Object.fromEntries(Object.entries(environment).filter(([, value]) => value !== undefined && value !== ''));
  const result = environmentSchema.safeParse(present);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`);
    throw new WalflowError('config_invalid', `invalid configuration: ${problems.join('; ')}`, { details: { problems } });
  }
  const env = result.data;
  return {
    databaseUrl: env.DATABASE_URL,
    slotName: env.WALFLOW_SLOT,
    httpPort: env.WALFLOW_HTTP_PORT,
    httpHost: env.WALFLOW_HTTP_HOST,
    catalogModule: env.WALFLOW_CATALOG,
    logLevel: env.WALFLOW_LOG_LEVEL,
    workerConcurrency: env.WALFLOW_WORKER_CONCURRENCY,
    workerPollMs: env.WALFLOW_WORKER_POLL_MS,
    workerLeaseMs: env.WALFLOW_WORKER_LEASE_MS,
    maxDepth: env.WALFLOW_MAX_DEPTH,
    batchSize: env.WALFLOW_BATCH_SIZE,
  };
}
