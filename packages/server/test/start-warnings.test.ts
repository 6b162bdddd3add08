import { loadConfig, startWalflow } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { describe, expect, it } from 'vitest';
import { keptWarnings, openMigrated } from './fixtures.js';

const database = useTestDatabase();

describe('walflow start', () => {
  it('warns of each WALFLOW_ variable it does not know, naming the setting it was likely meant for', async () => {
    const db = await openMigrated(database);
    await db.destroy();
    const config = loadConfig({ DATABASE_URL: database.url, WALFLOW_SLOT: database.slotName, WALFLOW_HTTP_PORT: '0', WALFLOW_ROLE: 'http', WALFLOW_RETENTION_DAY: '7' });
    const { logger, warnings } = keptWarnings();
    const walflow = await startWalflow(config, logger);
    try {
      expect(warnings).toContain('WALFLOW_RETENTION_DAY is not a walflow setting and is ignored: did you mean WALFLOW_RETENTION_DAYS?');
    } finally {
      await walflow.stop();
    }
  });
});
