import { setTimeout as sleep } from 'node:timers/promises';
import { withClient } from './pg-client.js';

/** How often the bench looks at walflow's counts while it waits; cheap enough not to slow walflow down. */
const POLL_MS = 500;

/**
 * What walflow wrote, read back from the database. Latencies come from commit timestamps (the server runs with
 * track_commit_timestamp): an event's `committed_at` is its WAL commit time, and pg_xact_commit_timestamp(xmin)
 * of the row walflow wrote is the commit time of the transaction that wrote it — for an event, the dispatcher's
 * batch; for a succeeded run, the transaction that recorded its actions and its success.
 */
export interface WalflowCounts {
  events: number;
  runs: number;
  succeeded: number;
}

export async function walflowCounts(url: string, eventType?: string): Promise<WalflowCounts> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<Record<keyof WalflowCounts, string>>(
      `SELECT (SELECT count(*) FROM walflow.events WHERE $1::text IS NULL OR event_type = $1) AS events,
              (SELECT count(*) FROM walflow.workflow_runs WHERE $1::text IS NULL OR event_type = $1) AS runs,
              (SELECT count(*) FROM walflow.workflow_runs WHERE ($1::text IS NULL OR event_type = $1) AND status = 'succeeded') AS succeeded`,
      [eventType ?? null],
    );
    const row = rows[0]!;
    return { events: Number(row.events), runs: Number(row.runs), succeeded: Number(row.succeeded) };
  });
}

/** Milliseconds from each event's commit to the commit of the dispatch batch that recorded it. */
export function recordedLatencies(url: string, eventType: string): Promise<number[]> {
  return numbers(
    url,
    `SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - committed_at) * 1000 AS ms FROM walflow.events WHERE event_type = $1`,
    [eventType],
  );
}

/** Milliseconds from each event's commit to the commit that marked its run succeeded. */
export function finishedLatencies(url: string, eventType: string): Promise<number[]> {
  return numbers(
    url,
    `SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - event_committed_at) * 1000 AS ms
       FROM walflow.workflow_runs WHERE event_type = $1 AND status = 'succeeded'`,
    [eventType],
  );
}

/** When walflow's work on a table started and ended, as commit times in epoch milliseconds. */
export interface CommitWindow {
  firstMs: number;
  lastMs: number;
  /** Rows of the first commit: done before the window opens, so a rate over the window leaves them out. */
  firstRows: number;
}

/** The first and last dispatch commits (events recorded, runs queued). */
export function dispatchWindow(url: string): Promise<CommitWindow> {
  return commitWindow(url, 'SELECT pg_xact_commit_timestamp(xmin) AS at FROM walflow.workflow_runs');
}

/** The first and last commits that recorded events. */
export function recordingWindow(url: string): Promise<CommitWindow> {
  return commitWindow(url, 'SELECT pg_xact_commit_timestamp(xmin) AS at FROM walflow.events');
}

/** From the first run claimed to the last run's success. */
export function executionWindow(url: string): Promise<CommitWindow> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ first: number; last: number }>(
      `SELECT extract(epoch FROM min(started_at)) * 1000 AS first, extract(epoch FROM max(pg_xact_commit_timestamp(xmin))) * 1000 AS last
         FROM walflow.workflow_runs WHERE status = 'succeeded'`,
    );
    // The window opens at the first claim, before any run of it was done.
    return { firstMs: Number(rows[0]!.first), lastMs: Number(rows[0]!.last), firstRows: 0 };
  });
}

/** The first and last commit times of the rows `selectAt` returns in a column named `at`. */
export async function commitWindow(url: string, selectAt: string): Promise<CommitWindow> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ first: string; last: string; first_rows: string }>(
      `WITH t AS (${selectAt})
       SELECT extract(epoch FROM min(at)) * 1000 AS first, extract(epoch FROM max(at)) * 1000 AS last,
              count(*) FILTER (WHERE at = (SELECT min(at) FROM t)) AS first_rows
         FROM t`,
    );
    return { firstMs: Number(rows[0]!.first), lastMs: Number(rows[0]!.last), firstRows: Number(rows[0]!.first_rows) };
  });
}

/** The `ms` column of every row; a null (a commit without its timestamp) is an error, never 0 ms. */
export async function numbers(url: string, text: string, values: unknown[] = []): Promise<number[]> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ ms: string | null }>(text, values);
    return rows.map((row) => {
      if (row.ms === null) throw new Error(`a latency could not be measured (a commit timestamp is missing): ${text}`);
      return Number(row.ms);
    });
  });
}

/** Every committed event is recorded and its runs are queued (the dispatcher deletes what it records). */
export const OUTBOX_EMPTY = 'NOT EXISTS (SELECT FROM walflow.outbox)';
/** No run is waiting or executing; only meaningful once the outbox is empty. */
export const RUNS_DONE = "NOT EXISTS (SELECT FROM walflow.workflow_runs WHERE status IN ('queued', 'running'))";

/**
 * Polls `condition` (OUTBOX_EMPTY, RUNS_DONE) until it holds or the deadline (epoch ms) passes; says whether it
 * held. These checks stay cheap on large tables, unlike counting, so the bench does not slow walflow down while it
 * waits; the measured end comes from commit times, not from this poll.
 */
export async function waitUntil(url: string, condition: string, deadline: number): Promise<boolean> {
  return withClient(url, async (client) => {
    for (;;) {
      const { rows } = await client.query<{ holds: boolean }>(`SELECT ${condition} AS holds`);
      if (rows[0]!.holds) return true;
      if (Date.now() > deadline) return false;
      await sleep(POLL_MS);
    }
  });
}
