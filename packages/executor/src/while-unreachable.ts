import type { Logger } from 'pino';

/** How often a worker tries again while the database does not answer. */
const RETRY_MS = 500;

/** `work`, tried again every RETRY_MS while it fails, for up to `forMs`; then its last failure. */
export async function whileUnreachable<T>(work: () => Promise<T>, forMs: number, logger: Logger, warning: string): Promise<T> {
  const giveUpAt = performance.now() + forMs;
  for (;;) {
    try {
      return await work();
    } catch (error) {
      if (performance.now() >= giveUpAt) throw error;
      logger.warn({ err: error }, warning);
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }
}
