import { isUuid } from '@walflow/core';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MountedHandler } from '../http-server.js';
import { actOnDeadLetters, actOnDeadRuns, changeWorkflowStatus, runBacktest, type ActionOutcome } from './action-handlers.js';
import type { ConsoleContext, ConsoleRequest } from './console-context.js';
import { html } from './html.js';
import { crossSiteReason, HttpError, parseCookies, readForm, redirect, sendPage } from './http-request.js';
import { streamEvents } from './live-events.js';
import { showDead, showEvent, showEvents, showOverview, showWorkflows, textParameter } from './page-handlers.js';
import { layout, type Frame } from './pages/layout.js';
import { loginPage } from './pages/login-page.js';
import { sameText, SESSION_SECONDS, type Principal } from './session.js';
import { addressGroup } from './token-attempts.js';

const SESSION_COOKIE = 'walflow_console';
/** What the last action did, for the page it redirects to: read once. */
const NOTICE_COOKIE = 'walflow_console_notice';

type GetRoute = (context: ConsoleContext, request: ConsoleRequest, match: RegExpExecArray) => Promise<void>;
type PostRoute = (context: ConsoleContext, request: ConsoleRequest, form: URLSearchParams) => Promise<ActionOutcome | void>;

const GET_ROUTES: [RegExp, GetRoute][] = [
  [/^\/console\/?$/, showOverview],
  [/^\/console\/events$/, showEvents],
  [/^\/console\/events\/stream$/, streamEvents],
  [/^\/console\/events\/([^/]+)$/, (context, request, match) => showEventIfId(context, request, match[1] ?? '')],
  [/^\/console\/workflows$/, (context, request) => showWorkflows(context, request)],
  [/^\/console\/dead$/, showDead],
];

const POST_ROUTES: Record<string, PostRoute> = {
  '/console/workflows/pause': (context, request, form) => changeWorkflowStatus(context, request, form, 'pause'),
  '/console/workflows/resume': (context, request, form) => changeWorkflowStatus(context, request, form, 'resume'),
  '/console/workflows/backtest': runBacktest,
  '/console/dead-letters/retry': (context, request, form) => actOnDeadLetters(context, request, form, 'retry'),
  '/console/dead-letters/discard': (context, request, form) => actOnDeadLetters(context, request, form, 'discard'),
  '/console/runs/retry': (context, request, form) => actOnDeadRuns(context, request, form, 'retry'),
  '/console/runs/discard': (context, request, form) => actOnDeadRuns(context, request, form, 'discard'),
};

async function showEventIfId(context: ConsoleContext, request: ConsoleRequest, id: string): Promise<void> {
  if (!isUuid(id)) throw new HttpError(404, `not an event id: ${id}`);
  await showEvent(context, request, id);
}

/**
 * The console's request handling: sign-in, authentication of every other request (a bearer token or the
 * signed session cookie), cross-site and CSRF checks on every POST, then the page or action.
 */
export function consoleHandler(context: ConsoleContext): MountedHandler {
  return async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const nonce = randomBytes(16).toString('base64');
    const method = request.method ?? 'GET';
    const cookies = parseCookies(request.headers.cookie);
    let principal: Principal | undefined;
    try {
      if (url.pathname === '/console/login') return await login(context, request, response, method, nonce);
      principal = await authenticate(context, request, cookies.values);
      if (!principal) {
        // Signing in again would not help: the browser would send both cookies again.
        const why = cookies.repeated.has(SESSION_COOKIE)
          ? `Your browser sends two ${SESSION_COOKIE} cookies (another site of this domain set one), and neither is taken: clear this site's cookies, then sign in.`
          : undefined;
        return sendPage(response, 401, loginPage(nonce, why), nonce, { 'www-authenticate': 'Bearer realm="walflow console"' });
      }
      const signedNotice = cookies.values.get(NOTICE_COOKIE);
      const notice = signedNotice === undefined ? undefined : context.auth.readNotice(principal, signedNotice);
      const consoleRequest: ConsoleRequest = {
        request,
        response,
        url,
        principal,
        nonce,
        notice: notice === undefined ? undefined : { kind: notice.startsWith('!') ? 'error' : 'done', text: notice.replace(/^!/, '') },
      };
      if (signedNotice !== undefined || cookies.repeated.has(NOTICE_COOKIE)) response.setHeader('set-cookie', cookie(context, request, NOTICE_COOKIE, '', 0));
      if (method === 'POST') return await post(context, consoleRequest);
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, `${method} is not allowed here`);
      for (const [pattern, route] of GET_ROUTES) {
        const match = pattern.exec(url.pathname);
        if (match) return await route(context, consoleRequest, match);
      }
      throw new HttpError(404, `no page ${url.pathname}`);
    } catch (error) {
      if (response.headersSent) return void response.end();
      // What went wrong inside walflow goes to the log; the page says only that it did.
      if (!(error instanceof HttpError)) context.host.logger.error({ err: error, path: url.pathname }, 'console request failed');
      const { status, message, headers } = error instanceof HttpError ? error : { status: 500, message: 'Something failed inside walflow; its log says what.', headers: {} };
      sendPage(response, status, errorPage({ title: statusTitle(status), nonce, principal: principal ?? null }, message), nonce, headers);
    }
  };
}

async function post(context: ConsoleContext, request: ConsoleRequest): Promise<void> {
  const crossSite = crossSiteReason(request.request);
  if (crossSite !== undefined) throw new HttpError(403, `refused: ${crossSite}`);
  const form = await readForm(request.request);
  const { principal, url, response } = request;
  const setCookie = (name: string, value: string, maxAgeSeconds: number) => ({ 'set-cookie': cookie(context, request.request, name, value, maxAgeSeconds) });
  const setNotice = (text: string) => setCookie(NOTICE_COOKIE, context.auth.signNotice(principal, text), 30);
  // A cookie goes along with any request the browser makes; the form's token proves the page was ours.
  if (principal.csrfToken !== null && !sameText(form.get('_csrf') ?? '', principal.csrfToken)) throw new HttpError(403, 'refused: the form is stale or not ours (CSRF token)');
  if (url.pathname === '/console/logout') {
    // The browser forgets its cookie; walflow refuses any copy of it from now on.
    if (principal.sessionId !== null && principal.expiresAt !== null) {
      await context.signedOut.signOut(principal.sessionId, principal.expiresAt);
      context.host.logger.info({ operator: principal.name, tenant: principal.tenant, session: principal.sessionId, address: clientAddress(request.request) }, 'console sign-out');
    }
    return redirect(response, '/console/login', setCookie(SESSION_COOKIE, '', 0));
  }
  const route = POST_ROUTES[url.pathname];
  if (!route) throw new HttpError(404, `no action ${url.pathname}`);
  try {
    const outcome = await route(context, request, form);
    if (outcome) redirect(response, outcome.returnTo, setNotice(outcome.done));
  } catch (error) {
    // A refused action goes back to its page with the reason, as a browser user expects after a form.
    if (!(error instanceof HttpError) || error.status >= 500 || principal.csrfToken === null) throw error;
    redirect(response, returnPath(url.pathname), setNotice(`!${error.message}`));
  }
}

function returnPath(actionPath: string): string {
  return actionPath.startsWith('/console/workflows') ? '/console/workflows' : '/console/dead';
}

async function login(context: ConsoleContext, request: IncomingMessage, response: ServerResponse, method: string, nonce: string): Promise<void> {
  if (method === 'GET' || method === 'HEAD') return sendPage(response, 200, loginPage(nonce), nonce);
  if (method !== 'POST') throw new HttpError(405, `${method} is not allowed here`);
  const crossSite = crossSiteReason(request);
  if (crossSite !== undefined) throw new HttpError(403, `refused: ${crossSite}`);
  const form = await readForm(request);
  refuseWhileGuessing(context, request);
  const opened = context.auth.tokenTenant(form.get('token') ?? '');
  const name = textParameter(form, 'name', 100);
  if (!opened) {
    context.tokenAttempts.failed(guesser(request));
    return sendPage(response, 401, loginPage(nonce, 'That token opens nothing here.'), nonce);
  }
  if (name === '') return sendPage(response, 400, loginPage(nonce, 'Say who you are: the audit log records it.'), nonce);
  const session = context.auth.issueSession({ name, tenant: opened.tenant });
  // The audit log names an operator as typed here: the log ties that name to a session and an address.
  context.host.logger.info({ operator: name, tenant: opened.tenant, session: session.sessionId, address: clientAddress(request) }, 'console sign-in');
  redirect(response, '/console', { 'set-cookie': cookie(context, request, SESSION_COOKIE, session.cookie, SESSION_SECONDS) });
}

/** Refuses any token from an address that has tried too many wrong ones of late (TokenAttempts). */
function refuseWhileGuessing(context: ConsoleContext, request: IncomingMessage): void {
  const waitMs = context.tokenAttempts.waitFor(guesser(request));
  if (waitMs === 0) return;
  const seconds = Math.ceil(waitMs / 1000);
  throw new HttpError(429, `Too many wrong tokens from this address: try again in ${seconds} s.`, { 'retry-after': String(seconds) });
}

function clientAddress(request: IncomingMessage): string {
  return request.socket.remoteAddress ?? 'unknown';
}

/** Whose failed tokens count together (addressGroup): one IPv4 address, or one IPv6 /64. */
function guesser(request: IncomingMessage): string {
  return addressGroup(clientAddress(request));
}

async function authenticate(context: ConsoleContext, request: IncomingMessage, cookies: Map<string, string>): Promise<Principal | undefined> {
  const bearer = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '')?.[1]?.trim();
  if (bearer !== undefined) {
    refuseWhileGuessing(context, request);
    const opened = context.auth.tokenTenant(bearer);
    if (!opened) context.tokenAttempts.failed(guesser(request));
    return opened && { name: 'bearer token', tenant: opened.tenant, csrfToken: null, expiresAt: null, sessionId: null };
  }
  const session = cookies.get(SESSION_COOKIE);
  const principal = session === undefined ? undefined : context.auth.readSession(session);
  if (principal?.sessionId == null) return principal;
  return (await context.signedOut.isSignedOut(principal.sessionId)) ? undefined : principal;
}

/**
 * HttpOnly and SameSite=Strict, scoped to the console; Secure with WALFLOW_CONSOLE_SECURE_COOKIES, or when a proxy
 * says the browser used HTTPS (behind several proxies, the first value is the scheme the browser used).
 */
function cookie(context: ConsoleContext, request: IncomingMessage, name: string, value: string, maxAgeSeconds: number): string {
  const forwarded = request.headers['x-forwarded-proto'];
  const browserScheme = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim().toLowerCase();
  const secure = context.host.config.consoleSecureCookies || browserScheme === 'https' ? '; Secure' : '';
  return `${name}=${encodeURIComponent(value)}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`;
}

function statusTitle(status: number): string {
  return ({ 400: 'Bad request', 403: 'Refused', 404: 'Not found', 405: 'Method not allowed', 409: 'Conflict', 413: 'Too large', 415: 'Unsupported form' } as Record<number, string>)[status] ?? 'Error';
}

function errorPage(frame: Omit<Frame, 'notice'>, message: string) {
  return layout(frame, html`<p class="notice error">${message}</p><p><a href="/console">Back to the overview</a></p>`);
}
