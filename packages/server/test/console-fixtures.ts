import type { RunningWalflow, WalflowConfig } from '@walflow/server';
import type { Logger } from 'pino';
import { silentLogger, startTestWalflow } from './fixtures.js';

export const CONSOLE_TOKEN = 'console-token-for-every-tenant';
export const T1_TOKEN = 'console-token-of-tenant-t1';
export const T2_TOKEN = 'console-token-of-tenant-t2';

/** walflow with the console on: one token for every tenant, one each for tenants t1 and t2. */
export function startConsoleWalflow(url: string, slotName: string, overrides: Partial<WalflowConfig> = {}, logger: Logger = silentLogger): Promise<RunningWalflow> {
  return startTestWalflow(
    url,
    slotName,
    {
      console: { token: CONSOLE_TOKEN, tenantTokens: new Map([['t1', T1_TOKEN], ['t2', T2_TOKEN]]) },
      ...overrides,
    },
    logger,
  );
}

export interface ConsoleResponse {
  status: number;
  headers: Headers;
  text: string;
}

/** Plain HTTP against the console, as a browser or a script would send it (no redirects followed). */
export class ConsoleClient {
  constructor(private readonly port: number) {}

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async request(path: string, init: { method?: string; headers?: Record<string, string>; form?: Record<string, string | string[]> } = {}): Promise<ConsoleResponse> {
    const body = init.form === undefined ? undefined : new URLSearchParams(Object.entries(init.form).flatMap(([key, value]) => (Array.isArray(value) ? value : [value]).map((item): [string, string] => [key, item])));
    const response = await fetch(`${this.origin}${path}`, { method: init.method ?? (body ? 'POST' : 'GET'), headers: init.headers, body, redirect: 'manual' });
    return { status: response.status, headers: response.headers, text: await response.text() };
  }

  /** Signs in through the form; returns the session cookie (name=value). */
  async login(name: string, token: string): Promise<string> {
    const response = await this.request('/console/login', { form: { name, token }, headers: { origin: this.origin, 'sec-fetch-site': 'same-origin' } });
    if (response.status !== 303) throw new Error(`login answered ${response.status}: ${response.text}`);
    return (response.headers.get('set-cookie') ?? '').split(';')[0]!;
  }
}

/** The CSRF token a console page put in its forms. */
export function csrfTokenIn(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match?.[1]) throw new Error('no CSRF token on the page');
  return match[1];
}
