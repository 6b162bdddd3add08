import { WalflowError } from '@walflow/core';
import { z } from 'zod';

// pg-logical-replication's wal2json types describe format 1 only; format 2 is validated here.
const lsnText = z.string().regex(/^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/, 'not an LSN');

const transactionBoundary = {
  xid: z.number().int().nonnegative(),
  timestamp: z.string().min(1),
  lsn: lsnText,
  nextlsn: lsnText,
};

const beginSchema = z.object({ action: z.literal('B'), ...transactionBoundary });
const commitSchema = z.object({ action: z.literal('C'), ...transactionBoundary });

const insertSchema = z.object({
  action: z.literal('I'),
  schema: z.string(),
  table: z.string(),
  columns: z.array(z.object({ name: z.string(), value: z.unknown() })),
});

const logicalMessageSchema = z.object({
  action: z.literal('M'),
  transactional: z.boolean(),
  prefix: z.string(),
  content: z.string(),
});

// Updates, deletes and truncates are filtered out by the plugin's `actions` option; they are still recognised
// so that a misconfigured slot is reported as such rather than as garbage.
const otherChangeSchema = z.object({ action: z.enum(['U', 'D', 'T']) }).loose();

const messageSchema = z.discriminatedUnion('action', [
  beginSchema,
  commitSchema,
  insertSchema,
  logicalMessageSchema,
  otherChangeSchema,
]);

export type Wal2JsonMessage = z.infer<typeof messageSchema>;
export type Wal2JsonBegin = z.infer<typeof beginSchema>;
export type Wal2JsonCommit = z.infer<typeof commitSchema>;
export type Wal2JsonInsert = z.infer<typeof insertSchema>;

export function parseWal2JsonMessage(raw: unknown): Wal2JsonMessage {
  const result = messageSchema.safeParse(raw);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => `${issue.path.join('.') || '(message)'}: ${issue.message}`);
    throw new WalflowError('message_invalid', `unexpected wal2json message: ${issues.join('; ')}`, {
      details: { raw },
    });
  }
  return result.data;
}

/**
 * wal2json prints timestamps as PostgreSQL text (`2026-11-26 21:26:52.84801+00`); this makes them ISO-8601
 * without losing the microseconds.
 */
export function walTimestampToIso(text: string): string {
  const iso = text.replace(' ', 'T');
  return /[+-]\d\d$/.test(iso) ? `${iso}:00` : iso;
}
