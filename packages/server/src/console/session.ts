import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ConsoleSettings } from './console-settings.js';

/** Who is using the console, and which tenant's rows they may see (null: every tenant). */
export interface Operator {
  name: string;
  tenant: string | null;
}

/** An authenticated request's operator; `csrfToken` is set for cookie sessions, whose forms must echo it. */
export interface Principal extends Operator {
  csrfToken: string | null;
  /** When a cookie session expires, milliseconds since the epoch; null for a bearer token. */
  expiresAt: number | null;
  /** A cookie session's id, which signing out refuses from then on; null for a bearer token. */
  sessionId: string | null;
}

interface SessionPayload {
  /** Operator name. */
  n: string;
  /** Tenant, or null. */
  t: string | null;
  /** Session id: each login gets its own CSRF token. */
  s: string;
  /** Expiry, seconds since the epoch. */
  e: number;
}

export const SESSION_SECONDS = 12 * 60 * 60;

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();
const sign = (key: Buffer, text: string): string => createHmac('sha256', key).update(text).digest('base64url');

/** Compares secrets in constant time. */
export function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** The name the audit log records for an operator's actions. */
export function auditActor(operator: Operator): string {
  return operator.tenant === null ? `${operator.name} (console)` : `${operator.name} (console, tenant ${operator.tenant})`;
}

/**
 * Tokens, and the signed session cookies that stand for them after a login. A cookie never holds a token: it
 * holds the operator's name, tenant, a session id and an expiry, signed with a key derived from the token it
 * was issued for, so changing a token ends its sessions and a session cannot be moved to another tenant.
 */
export class ConsoleAuth {
  private readonly keys = new Map<string | null, Buffer>();
  private readonly tokenDigests: { tenant: string | null; digest: Buffer }[] = [];

  constructor(
    settings: ConsoleSettings,
    private readonly now: () => number = Date.now,
  ) {
    for (const [tenant, token] of [[null, settings.token] as const, ...settings.tenantTokens]) {
      this.keys.set(tenant, digest(`walflow console session\u0000${token}`));
      this.tokenDigests.push({ tenant, digest: digest(token) });
    }
  }

  /** The tenant a token opens (null: all), or undefined for no token of ours. Compares in constant time. */
  tokenTenant(candidate: string): { tenant: string | null } | undefined {
    const presented = digest(candidate);
    let found: { tenant: string | null } | undefined;
    for (const { tenant, digest: known } of this.tokenDigests) {
      if (timingSafeEqual(presented, known)) found = { tenant };
    }
    return found;
  }

  /** A new session's cookie value, and its id (which the log records at sign-in). */
  issueSession(operator: Operator): { cookie: string; sessionId: string } {
    const payload: SessionPayload = { n: operator.name, t: operator.tenant, s: randomBytes(16).toString('base64url'), e: Math.floor(this.now() / 1000) + SESSION_SECONDS };
    const encoded = Buffer.from(JSON.stringify(payload)).toString('base64url');
    return { cookie: `${encoded}.${sign(this.key(operator.tenant), encoded)}`, sessionId: payload.s };
  }

  /**
   * What an action says on the page it returns to, signed for the session (or token) that acted: the notice
   * travels in a cookie, and a cookie set by another site of the same domain must not put words on walflow's pages.
   */
  signNotice(principal: Principal, text: string): string {
    return `${sign(this.key(principal.tenant), noticeSigned(principal, text))}.${text}`;
  }

  /** The text of a notice signed for this principal, or undefined for any other. */
  readNotice(principal: Principal, value: string): string | undefined {
    const separator = value.indexOf('.');
    const key = this.keys.get(principal.tenant);
    if (separator < 0 || key === undefined) return undefined;
    const text = value.slice(separator + 1);
    return sameText(value.slice(0, separator), sign(key, noticeSigned(principal, text))) ? text : undefined;
  }

  /**
   * The operator of a session cookie that is ours, unexpired and signed for a token still configured (whether
   * it was signed out is SignedOutSessions' to say).
   */
  readSession(value: string): Principal | undefined {
    const [encoded, signature, extra] = value.split('.');
    if (encoded === undefined || signature === undefined || extra !== undefined) return undefined;
    const payload = parsePayload(encoded);
    const key = payload && this.keys.get(payload.t);
    if (!payload || !key || !sameText(signature, sign(key, encoded))) return undefined;
    if (payload.e * 1000 <= this.now()) return undefined;
    return { name: payload.n, tenant: payload.t, csrfToken: sign(key, `csrf\u0000${payload.s}`), expiresAt: payload.e * 1000, sessionId: payload.s };
  }

  private key(tenant: string | null): Buffer {
    const key = this.keys.get(tenant);
    if (!key) throw new Error(`no console token for tenant ${tenant ?? '(all)'}`);
    return key;
  }
}

function noticeSigned(principal: Principal, text: string): string {
  return `notice\u0000${principal.sessionId ?? 'bearer'}\u0000${principal.name}\u0000${text}`;
}

function parsePayload(encoded: string): SessionPayload | undefined {
  try {
    const value = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as Partial<SessionPayload>;
    if (typeof value.n !== 'string' || (value.t !== null && typeof value.t !== 'string') || typeof value.s !== 'string' || typeof value.e !== 'number') return undefined;
    return { n: value.n, t: value.t, s: value.s, e: value.e };
  } catch {
    return undefined;
  }
}
