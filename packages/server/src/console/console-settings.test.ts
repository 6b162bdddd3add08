import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { parseConsoleSettings } from './console-settings.js';

const url = 'postgres://walflow@localhost:5432/app';

describe('console settings', () => {
  it('is off without WALFLOW_CONSOLE_TOKEN, and then binds to 0.0.0.0 as before', () => {
    const config = loadConfig({ DATABASE_URL: url });
    expect(config.console).toBeUndefined();
    expect(config.httpHost).toBe('0.0.0.0');
  });

  it('turns on with a token, binds to 127.0.0.1 unless told otherwise, and reads tenant tokens', () => {
    const config = loadConfig({ DATABASE_URL: url, WALFLOW_CONSOLE_TOKEN: 'a-long-enough-console-token', WALFLOW_CONSOLE_TOKENS: 't1=token-of-tenant-t1, t2=token-of-tenant-t2' });
    expect(config.httpHost).toBe('127.0.0.1');
    expect(config.console?.token).toBe('a-long-enough-console-token');
    expect([...(config.console?.tenantTokens ?? [])]).toEqual([['t1', 'token-of-tenant-t1'], ['t2', 'token-of-tenant-t2']]);
    expect(loadConfig({ DATABASE_URL: url, WALFLOW_CONSOLE_TOKEN: 'a-long-enough-console-token', WALFLOW_HTTP_HOST: '0.0.0.0' }).httpHost).toBe('0.0.0.0');
  });

  it('names every problem with the tokens, along with the other variables’', () => {
    expect(parseConsoleSettings('short', 't1=x,=token-without-tenant,t2=token-of-tenant-t2,t2=token-of-tenant-t2b').problems).toEqual([
      'WALFLOW_CONSOLE_TOKENS: the token of tenant t1 must be at least 16 characters',
      'WALFLOW_CONSOLE_TOKENS must be comma-separated tenant=token pairs',
      'WALFLOW_CONSOLE_TOKENS names tenant t2 twice',
      'WALFLOW_CONSOLE_TOKEN must be at least 16 characters',
    ]);
    expect(parseConsoleSettings(undefined, 't1=token-of-tenant-t1').problems).toEqual(['WALFLOW_CONSOLE_TOKENS needs WALFLOW_CONSOLE_TOKEN: the console is off without it']);
    expect(parseConsoleSettings('the-same-token-twice', 't1=the-same-token-twice').problems).toEqual([
      'WALFLOW_CONSOLE_TOKENS: every token must differ from the others and from WALFLOW_CONSOLE_TOKEN',
    ]);
    expect(() => loadConfig({ DATABASE_URL: url, WALFLOW_HTTP_PORT: 'x', WALFLOW_CONSOLE_TOKEN: 'short' })).toThrow(
      /WALFLOW_HTTP_PORT must be a whole number from 0 to 65535.*WALFLOW_CONSOLE_TOKEN must be at least 16 characters/,
    );
  });
});
