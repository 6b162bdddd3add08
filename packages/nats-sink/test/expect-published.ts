import type { WalflowDatabase } from '@walflow/core';
import { waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { expect } from 'vitest';
import { streamContents, type StoredEvent } from './stream-contents.js';

/** The tenant's live messages (replays left out), in stream order. */
export async function publishedFor(url: string, stream: string, tenant: string): Promise<StoredEvent[]> {
  return (await streamContents(url, stream)).filter((message) => message.cloudEvent.tenant === tenant && message.cloudEvent.replayid === undefined);
}

/**
 * Waits until the stream holds the tenant's committed events, then checks that it holds each exactly once (no
 * second message with another sequence) and in commit order, which is also commit order per aggregate.
 */
export async function expectPublishedOnceInCommitOrder(
  db: Kysely<WalflowDatabase>,
  target: { url: string; stream: string },
  tenant: string,
  committed: readonly string[],
): Promise<StoredEvent[]> {
  const published = await waitFor(
    `${committed.length} events of ${tenant} in stream ${target.stream}`,
    async () => {
      const messages = await publishedFor(target.url, target.stream, tenant);
      return messages.length >= committed.length && messages;
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
  expect(published).toHaveLength(committed.length);
  expect(new Set(published.map((message) => message.msgId)).size).toBe(committed.length);
  expect(published.map((message) => message.msgId)).toEqual(published.map((message) => `${message.cloudEvent.id}@${message.cloudEvent.time}`));
  const { rows } = await sql<{ id: string }>`
    SELECT id FROM walflow.events WHERE tenant_id = ${tenant} ORDER BY commit_lsn, tx_position`.execute(db);
  expect(rows.map((row) => row.id).sort()).toEqual([...committed].sort());
  expect(published.map((message) => message.cloudEvent.id)).toEqual(rows.map((row) => row.id));
  return published;
}
