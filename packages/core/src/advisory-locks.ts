/**
 * The classes (first keys) of the two-key advisory locks walflow takes, in one place so that no two purposes
 * share one: a lock whose second key happened to match another purpose's would hold that other up. Some are
 * taken inside SQL functions; those name the migration that takes them, with the number written out there.
 * (`walflow migrate` takes a one-key lock, a key space of its own.)
 */
export const AdvisoryLockClass = {
  /** Concurrency groups in walflow.claim_runs (migration 0011, and each that replaced it since); second key hashtext(group). */
  concurrencyGroup: 0x7763,
  /** One prune at a time, whether an operator's or a process's retention; second key 0. */
  prune: 0x7770,
  /** The leader of a slot; second key hashtext(slot name). */
  leader: 0x7766,
  // 0x7772 was the recording lock until migration 0044 made it a lock on walflow.sink_cursors, which roles without
  // rights on that table cannot take: not to be given to another purpose while an earlier version may still run.
  // 0x7773 was a JetStream sink's publisher lock until migration 0045 made it a row lock in walflow.sink_publishers:
  // not to be given to another purpose while an earlier version may still run.
  /** The pages of one replay id take turns; second key hashtext(replay id). */
  replay: 0x7774,
} as const;
