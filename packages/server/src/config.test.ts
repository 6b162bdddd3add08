import { describe, expect, it } from 'vitest';
import { leaseShorterThanActions, loadConfig } from './config.js';

const url = 'postgres://walflow@localhost:5432/app';

describe('loadConfig', () => {
  it('fills the defaults', () => {
    expect(loadConfig({ DATABASE_URL: url })).toMatchObject({
      databaseUrl: url,
      slotName: 'walflow',
      httpPort: 8787,
      catalogModule: undefined,
      workerConcurrency: 4,
      maxDepth: 8,
    });
  });

  it('reads numbers and names from the environment', () => {
    const config = loadConfig({ DATABASE_URL: url, WALFLOW_SLOT: 'walflow_eu', WALFLOW_HTTP_PORT: '9000', WALFLOW_CATALOG: './catalog.js' });
    expect(config).toMatchObject({ slotName: 'walflow_eu', httpPort: 9000, catalogModule: './catalog.js' });
  });

  it('names every bad variable in one error', () => {
    expect(() => loadConfig({ WALFLOW_HTTP_PORT: '80a', WALFLOW_SLOT: 'Robert"); DROP' })).toThrow(
      /DATABASE_URL is required.*WALFLOW_SLOT must be 1-63 lower-case.*WALFLOW_HTTP_PORT must be a whole number from 0 to 65535/,
    );
  });

  it('refuses what is out of range or not a postgres URL', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://x' })).toThrow(/DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL/);
    expect(() => loadConfig({ DATABASE_URL: url, WALFLOW_HTTP_PORT: '70000' })).toThrow(/WALFLOW_HTTP_PORT/);
    expect(() => loadConfig({ DATABASE_URL: url, WALFLOW_LOG_LEVEL: 'loud' })).toThrow(/WALFLOW_LOG_LEVEL/);
    expect(() => loadConfig({ DATABASE_URL: url, WALFLOW_SMTP_URL: 'smtp://a b' })).toThrow(expect.objectContaining({ code: 'config_invalid', message: expect.stringMatching(/WALFLOW_SMTP_URL must be an smtp/) }));
  });

  it('treats an empty or blank variable as unset', () => {
    expect(loadConfig({ DATABASE_URL: url, WALFLOW_SLOT: '' }).slotName).toBe('walflow');
    expect(loadConfig({ DATABASE_URL: url, WALFLOW_WORKER_CONCURRENCY: ' ', WALFLOW_HTTP_PORT: '\t' })).toMatchObject({ workerConcurrency: 4, httpPort: 8787 });
  });

  it('reads whole numbers as decimal digits only', () => {
    expect(loadConfig({ DATABASE_URL: url, WALFLOW_HTTP_PORT: ' 9000 ' }).httpPort).toBe(9000);
    for (const text of ['0x1F90', '1e1', '0b101', '-5', '5.0', '5 5']) {
      expect(() => loadConfig({ DATABASE_URL: url, WALFLOW_RETENTION_DAYS: text }), text).toThrow(/WALFLOW_RETENTION_DAYS must be a whole number from 1 to 36500/);
    }
  });

  it('refuses a lag threshold for degraded above the one for down', () => {
    expect(() => loadConfig({ DATABASE_URL: url, WALFLOW_HEALTH_LAG_SECONDS_DEGRADED: '600', WALFLOW_HEALTH_LAG_SECONDS_DOWN: '60' })).toThrow(
      /WALFLOW_HEALTH_LAG_SECONDS_DEGRADED must not exceed WALFLOW_HEALTH_LAG_SECONDS_DOWN \(60\)/,
    );
    expect(() => loadConfig({ DATABASE_URL: url, WALFLOW_HEALTH_LAG_BYTES_DOWN: '1000' })).toThrow(/WALFLOW_HEALTH_LAG_BYTES_DEGRADED must not exceed/);
    expect(loadConfig({ DATABASE_URL: url, WALFLOW_HEALTH_LAG_SECONDS_DEGRADED: '60', WALFLOW_HEALTH_LAG_SECONDS_DOWN: '60' }).healthThresholds.lagSecondsDown).toBe(60);
  });

  it('reads WALFLOW_CONSOLE_SECURE_COOKIES as true or false, and refuses anything else', () => {
    expect(loadConfig({ DATABASE_URL: url }).consoleSecureCookies).toBe(false);
    expect(loadConfig({ DATABASE_URL: url, WALFLOW_CONSOLE_SECURE_COOKIES: 'true' }).consoleSecureCookies).toBe(true);
    expect(() => loadConfig({ DATABASE_URL: url, WALFLOW_CONSOLE_SECURE_COOKIES: 'yes' })).toThrow(/WALFLOW_CONSOLE_SECURE_COOKIES must be true or false/);
  });

  it('reports a lag threshold out of its range once, without comparing it to the other', () => {
    let message = '';
    try {
      loadConfig({ DATABASE_URL: url, WALFLOW_HEALTH_LAG_SECONDS_DEGRADED: '99999999999' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/WALFLOW_HEALTH_LAG_SECONDS_DEGRADED must be a whole number/);
    expect(message).not.toContain('must not exceed');
  });

  it('lists the WALFLOW_ variables it does not read, with the setting a misspelt one most likely means', () => {
    const config = loadConfig({
      DATABASE_URL: url,
      WALFLOW_RETENTION_DAY: '7',
      WALFLOW_HEALTH_LAG_SECONDS_DEGARDED: '30',
      WALFLOW_SOMETHING_ELSE_ENTIRELY: 'x',
      WALFLOW_SECRET_CRM_TOKEN: 'a secret, read by name',
      WALFLOW_CONSOLE_TOKEN: 'ops:a-long-enough-console-token',
      WALFLOW_TEST_DATABASE_URL: url,
      WALFLOW_DEMO_DATABASE_URL: url,
      HOME: '/root',
    });
    expect(config.unknownVariables).toEqual([
      { name: 'WALFLOW_HEALTH_LAG_SECONDS_DEGARDED', didYouMean: 'WALFLOW_HEALTH_LAG_SECONDS_DEGRADED' },
      { name: 'WALFLOW_RETENTION_DAY', didYouMean: 'WALFLOW_RETENTION_DAYS' },
      { name: 'WALFLOW_SOMETHING_ELSE_ENTIRELY' },
    ]);
    // Its default stays in force, as before; the variable is only reported.
    expect(config.retentionDays).toBe(30);
  });

  it('reads WALFLOW_UPDATE_FIELDS entries, each optionally scoped by a tenant column', () => {
    expect(loadConfig({ DATABASE_URL: url, WALFLOW_UPDATE_FIELDS: 'crm.agents.total, crm.accounts.balance@tenant_id' }).updateFields).toEqual(['crm.agents.total', 'crm.accounts.balance@tenant_id']);
    expect(() => loadConfig({ DATABASE_URL: url, WALFLOW_UPDATE_FIELDS: 'crm.accounts.balance@' })).toThrow(/WALFLOW_UPDATE_FIELDS must be a comma-separated list of schema\.table\.column entries, each optionally @tenant_column/);
    expect(() => loadConfig({ DATABASE_URL: url, WALFLOW_UPDATE_FIELDS: 'crm.accounts.balance,crm.accounts.balance@tenant_id' })).toThrow(/WALFLOW_UPDATE_FIELDS names a column twice/);
  });

  it('fails with a config_invalid code', () => {
    expect(() => loadConfig({})).toThrow(expect.objectContaining({ code: 'config_invalid' }));
  });
});

describe('leaseShorterThanActions', () => {
  it('says why a lease up to one and a half action timeouts can lose a run whose worker is well, and is quiet otherwise', () => {
    expect(leaseShorterThanActions(loadConfig({ DATABASE_URL: url }))).toBeUndefined();
    expect(leaseShorterThanActions(loadConfig({ DATABASE_URL: url, WALFLOW_WORKER_LEASE_MS: '15000' }))).toMatch(
      /^WALFLOW_WORKER_LEASE_MS \(15000\) is not longer than one and a half times WALFLOW_ACTION_TIMEOUT_MS \(10000\): .*abandoned as if its worker had died$/,
    );
    expect(leaseShorterThanActions(loadConfig({ DATABASE_URL: url, WALFLOW_WORKER_LEASE_MS: '15001' }))).toBeUndefined();
  });
});
