import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';

/**
 * Console sessions their operators signed out of before they expired. A session is a signed cookie, valid by
 * itself wherever it is presented, so signing out must be remembered: in the database, for every walflow
 * process serving the console, until the session would have expired anyway. Live streams of this process
 * that a session opened end at its sign-out.
 */
export class SignedOutSessions {
  private readonly listeners = new Map<string, Set<() => void>>();

  constructor(private readonly db: Kysely<WalflowDatabase>) {}

  async isSignedOut(sessionId: string): Promise<boolean> {
    const { rows } = await sql`SELECT 1 FROM walflow.console_signed_out WHERE session_id = ${sessionId}`.execute(this.db);
    return rows.length > 0;
  }

  /** Refuses the session from now on; the sessions past their expiry are forgotten at the same time. */
  async signOut(sessionId: string, expiresAt: number): Promise<void> {
    await sql`
      WITH forgotten AS (DELETE FROM walflow.console_signed_out WHERE expires_at < now())
      INSERT INTO walflow.console_signed_out (session_id, expires_at) VALUES (${sessionId}, ${new Date(expiresAt)})
      ON CONFLICT (session_id) DO NOTHING`.execute(this.db);
    for (const listener of this.listeners.get(sessionId) ?? []) listener();
  }

  /** Calls `listener` when the session is signed out here; returns what removes it. */
  onSignOut(sessionId: string, listener: () => void): () => void {
    const listeners = this.listeners.get(sessionId) ?? new Set();
    this.listeners.set(sessionId, listeners.add(listener));
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0) this.listeners.delete(sessionId);
    };
  }
}
