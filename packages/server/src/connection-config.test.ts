import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { connectionConfig, connectTimeoutMs, withoutApplicationName } from './connection-config.js';

const url = 'postgres://walflow@localhost:5432/app';

describe('connect timeout', () => {
  it('is 10 s unless DATABASE_URL says otherwise', () => {
    expect(connectTimeoutMs(url)).toBe(10_000);
    expect(connectionConfig(url, 'walflow-replication')).toEqual({
      connectionString: url,
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 30_000,
      application_name: 'walflow-replication',
    });
  });

  it('reads connect_timeout as libpq does: seconds, 1 meaning 2, 0 or less no limit', () => {
    expect(connectTimeoutMs(`${url}?connect_timeout=5`)).toBe(5000);
    expect(connectTimeoutMs(`${url}?sslmode=disable&connect_timeout=1`)).toBe(2000);
    expect(connectTimeoutMs(`${url}?connect_timeout=0`)).toBe(0);
    expect(connectTimeoutMs(`${url}?connect_timeout=-1`)).toBe(0);
  });

  it('refuses a connect_timeout that is no whole number or beyond what a timer holds, in the configuration and wherever a connection is made', () => {
    expect(() => connectTimeoutMs(`${url}?connect_timeout=2.5`)).toThrow('DATABASE_URL has a connect_timeout that is not a whole number of seconds up to 2147483 (0 for no limit): "2.5"');
    // Node would fire a longer timer at once.
    expect(connectTimeoutMs(`${url}?connect_timeout=2147483`)).toBe(2_147_483_000);
    expect(() => connectTimeoutMs(`${url}?connect_timeout=2147484`)).toThrow(/not a whole number of seconds up to 2147483/);
    expect(() => loadConfig({ DATABASE_URL: `${url}?connect_timeout=soon` })).toThrow(
      expect.objectContaining({ code: 'config_invalid', message: expect.stringMatching(/DATABASE_URL has a connect_timeout that is not a whole number of seconds/) }),
    );
  });
});

describe('walflow names its own sessions', () => {
  it('whatever application_name DATABASE_URL gives', () => {
    expect(connectionConfig('postgres://u@h:5432/db?application_name=mine&sslmode=disable', 'walflow-replication')).toMatchObject({
      connectionString: 'postgres://u@h:5432/db?sslmode=disable',
      application_name: 'walflow-replication',
    });
    expect(withoutApplicationName('postgres://u@h/db')).toBe('postgres://u@h/db');
  });
});
