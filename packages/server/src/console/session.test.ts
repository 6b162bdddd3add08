import { describe, expect, it } from 'vitest';
import { auditActor, ConsoleAuth, SESSION_SECONDS } from './session.js';

const settings = { token: 'token-for-every-tenant', tenantTokens: new Map([['t1', 'token-of-tenant-t1']]) };

describe('ConsoleAuth', () => {
  it('tells which tenant a token opens, and nothing for anything else', () => {
    const auth = new ConsoleAuth(settings);
    expect(auth.tokenTenant('token-for-every-tenant')).toEqual({ tenant: null });
    expect(auth.tokenTenant('token-of-tenant-t1')).toEqual({ tenant: 't1' });
    expect(auth.tokenTenant('token-of-tenant-t2')).toBeUndefined();
    expect(auth.tokenTenant('')).toBeUndefined();
  });

  it('issues signed sessions holding no token, each with a CSRF token of its own', () => {
    const auth = new ConsoleAuth(settings);
    const first = auth.issueSession({ name: 'alice', tenant: 't1' }).cookie;
    const second = auth.issueSession({ name: 'alice', tenant: 't1' }).cookie;
    expect(first).not.toContain('token-of-tenant-t1');
    const read = auth.readSession(first);
    expect(read).toMatchObject({ name: 'alice', tenant: 't1' });
    expect(read?.csrfToken).toMatch(/^[\w-]{43}$/);
    expect(auth.readSession(second)?.csrfToken).not.toBe(read?.csrfToken);
  });

  it('refuses a tampered, re-tenanted, expired or foreign session', () => {
    let now = Date.parse('2026-11-26T12:00:00Z');
    const auth = new ConsoleAuth(settings, () => now);
    const session = auth.issueSession({ name: 'alice', tenant: 't1' }).cookie;
    const [payload, signature] = session.split('.') as [string, string];
    const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const reencode = (changes: Record<string, unknown>) => Buffer.from(JSON.stringify({ ...decoded, ...changes })).toString('base64url');
    expect(auth.readSession(`${reencode({ t: null })}.${signature}`)).toBeUndefined();
    expect(auth.readSession(`${reencode({ n: 'mallory' })}.${signature}`)).toBeUndefined();
    expect(auth.readSession(`${payload}.${signature}x`)).toBeUndefined();
    expect(auth.readSession('not a session')).toBeUndefined();
    // A token changed since: its sessions end.
    expect(new ConsoleAuth({ ...settings, tenantTokens: new Map([['t1', 'a-new-token-for-t1']]) }, () => now).readSession(session)).toBeUndefined();
    now += SESSION_SECONDS * 1000;
    expect(auth.readSession(session)).toBeUndefined();
  });

  it('reads a notice only when it was signed for the same session', () => {
    const auth = new ConsoleAuth(settings);
    const alice = auth.readSession(auth.issueSession({ name: 'alice', tenant: 't1' }).cookie)!;
    const bob = auth.readSession(auth.issueSession({ name: 'bob', tenant: 't1' }).cookie)!;
    const notice = auth.signNotice(alice, 'Paused t1/notify. Sign in at https://x.example');
    expect(auth.readNotice(alice, notice)).toBe('Paused t1/notify. Sign in at https://x.example');
    expect(auth.readNotice(bob, notice)).toBeUndefined();
    expect(auth.readNotice(alice, `${notice.split('.')[0]!}.Session key rotated: sign in at https://evil.example`)).toBeUndefined();
    expect(auth.readNotice(alice, '!Session key rotated: sign in at https://evil.example')).toBeUndefined();
  });

  it('names the operator and their scope for the audit log', () => {
    expect(auditActor({ name: 'alice', tenant: null })).toBe('alice (console)');
    expect(auditActor({ name: 'bob', tenant: 't1' })).toBe('bob (console, tenant t1)');
  });
});
