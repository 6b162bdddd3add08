import { isWalflowError, parseLsn, type EventEnvelope } from '@walflow/core';
import { HTTP, type CloudEvent } from 'cloudevents';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from '@walflow/testing';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import type { ActionRuntime, ExternalActionContext } from '../src/actions/external-action.js';
import { guardedLookup } from '../src/actions/address-guard.js';
import { DISCARD_LIMIT_MS, postWebhook, webhookAgents } from '../src/actions/webhook-request.js';
import { webhookAction, webhookActionSchema, type WebhookAction } from '../src/actions/webhook.js';
import { parseWorkflowDefinition } from '../src/workflow-definition.js';
import type { StoredWorkflow } from '../src/workflow-store.js';

interface RecordedRequest {
  method: string | undefined;
  path: string | undefined;
  headers: Record<string, string>;
  body: string;
}

const event: EventEnvelope = {
  id: '0f5a3c1e-0000-4000-8000-000000000001',
  type: 'recruit.graduated_to_agent',
  tenantId: 'graduation',
  aggregateType: 'recruit',
  aggregateId: 'r-42',
  payload: { name: 'Ada', level: 3 },
  metadata: { actorId: 'u1' },
  xid: '812',
  commitLsn: parseLsn('0/16B3748'),
  committedAt: '2024-05-01T12:00:00.123456Z',
  position: 0,
};

const signingSecret = `whsec_${randomBytes(24).toString('base64')}`;
const idempotencyKey = '7d0c2f5e-0000-4000-8000-000000000099:2';
const bearer = `Bearer ${randomBytes(12).toString('hex')}`;

function workflowWith(action: WebhookAction): StoredWorkflow {
  return {
    id: 'wf-1',
    tenantId: 'graduation',
    name: 'notify-crm',
    status: 'active',
    pausedReason: null,
    triggerEvent: 'recruit.graduated_to_agent',
    version: 1,
    definition: parseWorkflowDefinition({ tenant: 'graduation', name: 'notify-crm', trigger: { event: 'recruit.graduated_to_agent' }, actions: [action] }),
    updatedAt: new Date(),
  };
}

function contextFor(action: WebhookAction, runtime: Partial<ActionRuntime> = {}, signal = AbortSignal.timeout(10_000)): ExternalActionContext {
  return {
    event,
    workflow: workflowWith(action),
    runId: '7d0c2f5e-0000-4000-8000-000000000099',
    actionIndex: 2,
    idempotencyKey,
    signal,
    runtime: {
      secrets: new Map([
        ['CRM_TOKEN', bearer],
        ['UNUSED', 'do-not-print-me'],
      ]),
      webhookSigningSecret: signingSecret,
      webhookAllowHosts: ['127.0.0.1'],
      ...runtime,
    },
  };
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
});

async function startReceiver(respond: (response: ServerResponse, request: RecordedRequest) => void = (response) => response.end('ok')) {
  const requests: RecordedRequest[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const recorded = { method: request.method, path: request.url, headers: flatHeaders(request.headers), body: Buffer.concat(chunks).toString('utf8') };
      requests.push(recorded);
      respond(response, recorded);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

function flatHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : (value ?? '')]));
}

async function failureOf(promise: Promise<unknown>): Promise<Error> {
  const error: unknown = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(isWalflowError(error, 'action_failed')).toBe(true);
  return error as Error;
}

describe('webhook', () => {
  it('POSTs a signed CloudEvent with templated URL, data and headers', async () => {
    const receiver = await startReceiver();
    const action = webhookActionSchema.parse({
      type: 'webhook',
      url: `${receiver.base}/hooks/{{event.aggregateType}}?id={{event.aggregateId}}`,
      headers: { authorization: { secret: 'CRM_TOKEN' }, 'x-tenant': '{{event.tenantId}}' },
      data: { recruit: '{{event.aggregateId}}', greeting: 'Welcome {{event.payload.name}} & co', fixed: 3, list: ['{{event.type}}'] },
      cloudEventType: 'com.example.crm.agent_created',
    });

    const result = await webhookAction.execute(action, contextFor(action));

    expect(result).toEqual({ status: 200, url: `${receiver.base}/hooks/recruit?id=r-42` });
    expect(receiver.requests).toHaveLength(1);
    const request = receiver.requests[0];
    if (request === undefined) throw new Error('no request recorded');
    expect(request).toMatchObject({ method: 'POST', path: '/hooks/recruit?id=r-42' });
    expect(request.headers).toMatchObject({
      'content-type': 'application/cloudevents+json',
      authorization: bearer,
      'x-tenant': 'graduation',
      'webhook-id': idempotencyKey,
    });
    expect(Math.abs(Number(request.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);

    // The reference implementation accepts the signature; it throws otherwise.
    expect(new Webhook(signingSecret).verify(request.body, request.headers)).toMatchObject({ id: event.id });
    expect(() => new Webhook(`whsec_${randomBytes(24).toString('base64')}`).verify(request.body, request.headers)).toThrow();

    const cloudEvent = HTTP.toEvent({ headers: request.headers, body: request.body }) as CloudEvent<unknown>;
    expect(cloudEvent.validate()).toBe(true);
    expect(cloudEvent).toMatchObject({
      specversion: '1.0',
      id: event.id,
      source: 'walflow/graduation/notify-crm',
      type: 'com.example.crm.agent_created',
      subject: 'recruit/r-42',
      datacontenttype: 'application/json',
      data: { recruit: 'r-42', greeting: 'Welcome Ada & co', fixed: 3, list: ['recruit.graduated_to_agent'] },
    });
    // The body keeps the commit time's microseconds; the SDK's Date keeps milliseconds.
    expect(JSON.parse(request.body)).toMatchObject({ time: '2024-05-01T12:00:00.123456Z' });
  });

  it('percent-encodes each {{value}} in the URL, so an event cannot move the call to another host or path; {{{value}}} is taken whole', async () => {
    const receiver = await startReceiver();
    const hostile = { ...event, payload: { id: 'a/../admin?x=1#', region: 'eu&all=1', target: `${receiver.base}/whole`, host: 'evil.com/?', up: '..', empty: '', dotted: `${receiver.base}/a/../whole` } };
    const run = (url: string) => {
      const action = webhookActionSchema.parse({ type: 'webhook', url });
      return webhookAction.execute(action, { ...contextFor(action), event: hostile });
    };

    expect(await run(`${receiver.base}/orders/{{event.payload.id}}?region={{event.payload.region}}`)).toMatchObject({ status: 200 });
    expect(await run('{{{event.payload.target}}}')).toMatchObject({ status: 200 });
    expect(receiver.requests.map((request) => request.path)).toEqual(['/orders/a%2F..%2Fadmin%3Fx%3D1%23?region=eu%26all%3D1', '/whole']);
    // Raw, `evil.com/?` would make evil.com the host; encoded, it stays inside the host, which is then no host.
    const moved = await failureOf(run('http://{{event.payload.host}}.hooks.example.com/x'));
    expect(moved.message).toBe('webhook URL is not a valid URL: "http://evil.com%2F%3F.hooks.example.com/x"');
    // A dot segment is left as it is by percent-encoding, and resolved by the URL: refused.
    expect((await failureOf(run(`${receiver.base}/tenants/{{event.payload.up}}/hook`))).message).toBe('webhook URL: the value ".." would move the URL up its path');
    // Nor can values make one with the template's own dots around them.
    for (const path of ['/tenants/t1/files/.{{event.payload.empty}}.', '/tenants/t1/files/{{event.payload.empty}}.{{event.payload.empty}}/x', '/tenants/t1/%2e{{event.payload.empty}}%2E/x', '/tenants/t1\\.{{event.payload.empty}}.\\x']) {
      expect((await failureOf(run(`${receiver.base}${path}`))).message, path).toMatch(/^webhook URL: its path holds a "\." or "\.\." segment once rendered/);
    }
    expect(receiver.requests).toHaveLength(2);
    // A dot segment the template writes itself is the workflow's, and one in a URL taken whole is the event's own.
    expect(await run(`${receiver.base}/tenants/t1/../up/{{event.payload.region}}`)).toMatchObject({ status: 200 });
    expect(await run(`{{{event.payload.dotted}}}`)).toMatchObject({ status: 200 });
    expect(receiver.requests.slice(2).map((request) => request.path)).toEqual(['/tenants/up/eu%26all%3D1', '/whole']);
  });

  it("defaults the data to the event's payload and the type to the event's type", async () => {
    const receiver = await startReceiver((response) => {
      response.statusCode = 204;
      response.end();
    });
    const action = webhookActionSchema.parse({ type: 'webhook', url: `${receiver.base}/plain` });
    expect(await webhookAction.execute(action, contextFor(action))).toEqual({ status: 204, url: `${receiver.base}/plain` });
    expect(JSON.parse(receiver.requests[0]?.body ?? '')).toMatchObject({ type: event.type, data: { name: 'Ada', level: 3 } });
  });

  it('refuses loopback when it is not allow-listed', async () => {
    const receiver = await startReceiver();
    const action = webhookActionSchema.parse({ type: 'webhook', url: receiver.base });
    const error = await failureOf(webhookAction.execute(action, contextFor(action, { webhookAllowHosts: [] })));
    expect(error.message).toBe('webhook host 127.0.0.1 is not a public address (loopback); allow-list the host to call it');
    expect(receiver.requests).toHaveLength(0);
  });

  it('refuses the cloud metadata address', async () => {
    const action = webhookActionSchema.parse({ type: 'webhook', url: 'http://169.254.169.254/latest/meta-data/' });
    const error = await failureOf(webhookAction.execute(action, contextFor(action)));
    expect(error.message).toBe('webhook host 169.254.169.254 is not a public address (link-local); allow-list the host to call it');
  });

  it('refuses other schemes and URLs with credentials that an event’s values make', async () => {
    // Written whole in the workflow, such URLs are refused when it is applied (workflow-definition.test.ts).
    for (const [url, message] of [
      ['file:///etc/passwd', 'webhook URL must use http or https, not file'],
      ['http://{{event.payload.name}}:pass@127.0.0.1/', 'webhook URL must not contain credentials; send them in a header from a secret'],
      ['not a url {{event.id}}', `webhook URL is not a valid URL: "not a url ${event.id}"`],
    ] as const) {
      const action = webhookActionSchema.parse({ type: 'webhook', url });
      expect((await failureOf(webhookAction.execute(action, contextFor(action)))).message).toBe(message);
    }
  });

  it('connects only to addresses the guard checked: a name that resolves to a public address, then to a private one, is refused', async () => {
    const receiver = await startReceiver();
    const port = new URL(receiver.base).port;
    const action = webhookActionSchema.parse({ type: 'webhook', url: `http://rebind.example:${port}/hook` });
    const answers = [['93.184.216.34'], ['127.0.0.1']];
    const rebinding = { webhookAllowHosts: [], resolveHost: () => Promise.resolve(answers.shift() ?? ['127.0.0.1']) };
    const error = await failureOf(webhookAction.execute(action, contextFor(action, rebinding)));
    expect(error.message).toBe('webhook host rebind.example (resolves to 127.0.0.1) is not a public address (loopback); allow-list the host to call it');
    expect(receiver.requests).toHaveLength(0);

    // Allow-listed, the name reaches the address the guard gave the connection (the system's resolver knows no such name).
    const allowed = { webhookAllowHosts: ['rebind.example'], resolveHost: () => Promise.resolve(['127.0.0.1']) };
    expect(await webhookAction.execute(action, contextFor(action, allowed))).toEqual({ status: 200, url: `http://rebind.example:${port}/hook` });
    expect(receiver.requests).toHaveLength(1);
  });

  it('fails on a non-2xx answer with the status and at most 500 characters of the body', async () => {
    const receiver = await startReceiver((response) => {
      response.statusCode = 503;
      response.end(`down for maintenance ${'x'.repeat(2_000)}`);
    });
    const action = webhookActionSchema.parse({ type: 'webhook', url: `${receiver.base}/busy` });
    const error = await failureOf(webhookAction.execute(action, contextFor(action)));
    expect(error.message).toMatch(new RegExp(`^webhook to ${receiver.base}/busy answered 503 Service Unavailable: down for maintenance x+$`));
    expect(error.message.length).toBeLessThan(`webhook to ${receiver.base}/busy answered 503 Service Unavailable: `.length + 501);
    expect((error as { details?: unknown }).details).toEqual({ status: 503 });
  });

  it('fails on a redirect instead of following it', async () => {
    const receiver = await startReceiver((response) => {
      response.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
      response.end();
    });
    const action = webhookActionSchema.parse({ type: 'webhook', url: `${receiver.base}/moved` });
    const error = await failureOf(webhookAction.execute(action, contextFor(action)));
    expect(error.message).toBe(
      `webhook to ${receiver.base}/moved answered 302 redirecting to http://169.254.169.254/latest/meta-data/; redirects are not followed`,
    );
    expect(receiver.requests).toHaveLength(1);
  });

  it('names a missing secret without printing any secret value', async () => {
    const receiver = await startReceiver();
    const action = webhookActionSchema.parse({ type: 'webhook', url: receiver.base, headers: { authorization: { secret: 'CRM_TOKEN_V2' } } });
    const error = await failureOf(webhookAction.execute(action, contextFor(action)));
    expect(error.message).toBe('webhook header authorization needs secret CRM_TOKEN_V2, which is not configured');
    expect(error.message).not.toContain(bearer);
    expect(error.message).not.toContain('do-not-print-me');
    expect(receiver.requests).toHaveLength(0);
  });

  it('fails clearly without a signing secret', async () => {
    const receiver = await startReceiver();
    const action = webhookActionSchema.parse({ type: 'webhook', url: receiver.base });
    const error = await failureOf(webhookAction.execute(action, contextFor(action, { webhookSigningSecret: undefined })));
    expect(error.message).toBe('webhook cannot run: no webhook signing secret is configured (whsec_…)');
    expect(receiver.requests).toHaveLength(0);
  });

  it('times out when the receiver never answers', async () => {
    const receiver = await startReceiver(() => {
      // Never answers.
    });
    const action = webhookActionSchema.parse({ type: 'webhook', url: `${receiver.base}/slow` });
    const started = Date.now();
    const error = await failureOf(webhookAction.execute(action, contextFor(action, {}, AbortSignal.timeout(200))));
    expect(error.message).toBe(`webhook to ${receiver.base}/slow timed out`);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(receiver.requests).toHaveLength(1);
  });

  it('succeeds on a 2xx whose body never ends, without waiting for it, and closes the connection once the body runs past its limits', async () => {
    const closed: string[] = [];
    const receiver = await startReceiver((response, request) => {
      response.once('close', () => closed.push(request.path ?? ''));
      response.writeHead(200);
      if (request.path === '/trickle') response.write('still sending');
      else {
        // Endless: as fast as the connection takes it.
        const chunk = 'x'.repeat(16 * 1024);
        const send = (): void => {
          while (response.write(chunk));
          response.once('drain', send);
        };
        send();
      }
    });
    // The action's time limit is over once it returns (the worker disposes of it): it must not be what ends them.
    const neverAborted = new AbortController().signal;
    for (const path of ['/endless', '/trickle']) {
      const action = webhookActionSchema.parse({ type: 'webhook', url: `${receiver.base}${path}` });
      expect(await webhookAction.execute(action, contextFor(action, {}, neverAborted))).toEqual({ status: 200, url: `${receiver.base}${path}` });
    }
    await waitFor('the endless body to be cut off at its size limit', () => closed.includes('/endless'), { timeoutMs: DISCARD_LIMIT_MS / 2 });
    await waitFor('the trickling body to be cut off at its time limit', () => closed.includes('/trickle'), { timeoutMs: DISCARD_LIMIT_MS * 3 });
  });

  it('fails when nothing listens', async () => {
    const receiver = await startReceiver();
    const url = receiver.base;
    await new Promise<void>((resolve) => servers.pop()?.close(() => resolve()));
    const action = webhookActionSchema.parse({ type: 'webhook', url });
    const error = await failureOf(webhookAction.execute(action, contextFor(action)));
    expect(error.message).toMatch(new RegExp(`^webhook to ${url}/ failed: connect ECONNREFUSED 127\\.0\\.0\\.1:\\d+$`));
    // A name with several addresses, each refused: every reason, not the empty message of Node's AggregateError.
    const port = new URL(url).port;
    const several = webhookActionSchema.parse({ type: 'webhook', url: `http://twice.example:${port}/` });
    const both = await failureOf(webhookAction.execute(several, contextFor(several, { webhookAllowHosts: ['twice.example'], resolveHost: () => Promise.resolve(['127.0.0.1', '::1']) })));
    expect(both.message).toMatch(new RegExp(`^webhook to http://twice\\.example:${port}/ failed: connect ECONNREFUSED (127\\.0\\.0\\.1|::1):${port}; connect ECONNREFUSED (::1|127\\.0\\.0\\.1):${port}$`));
  });

  it('sends a secret only to a host the workflow names itself, never to one an event chooses', () => {
    const withSecret = (url: string) => webhookActionSchema.safeParse({ type: 'webhook', url, headers: { authorization: { secret: 'CRM_TOKEN' }, 'x-tenant': '{{event.tenantId}}' } });
    for (const url of ['{{{event.payload.callbackUrl}}}', 'https://{{event.payload.host}}/hook', 'https://api.example.com{{event.payload.path}}', 'https://api.example.com:{{event.payload.port}}/', '{{event.payload.scheme}}://api.example.com/']) {
      expect(withSecret(url).error?.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`), url).toEqual([
        "headers.authorization: takes secret CRM_TOKEN, but the URL's scheme, host or port come from the event: a secret is only sent to a host the URL names itself",
      ]);
    }
    for (const url of ['https://api.example.com/hooks/{{event.aggregateId}}?id={{event.id}}', 'https://api.example.com', 'http://127.0.0.1:8080/x']) {
      expect(withSecret(url).success, url).toBe(true);
    }
    // Without a secret, an event may still choose where its own data goes.
    expect(webhookActionSchema.safeParse({ type: 'webhook', url: '{{{event.payload.callbackUrl}}}' }).success).toBe(true);
  });

  it('closes a kept connection that stays idle, so hosts an event names leave no socket behind', async () => {
    let closed = 0;
    const server = createServer((request, response) => {
      request.resume();
      request.on('end', () => response.writeHead(200, { 'content-length': '0' }).end());
    });
    server.on('connection', (socket) => socket.on('close', () => closed++));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    try {
      const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/idle`);
      const agents = webhookAgents({ idleMs: 200, maxIdlePerHost: 16 });
      const response = await postWebhook(url, {}, '{}', { signal: AbortSignal.timeout(5_000), lookup: guardedLookup(['127.0.0.1']), agents });
      expect(response.status).toBe(200);
      response.discard();
      // The server keeps the connection open (its keep-alive lasts 5 s): the agent is the one to close it.
      await waitFor('the idle connection to be closed', () => closed === 1, { timeoutMs: 3_000 });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('rejects reserved headers and broken templates when the workflow is applied', () => {
    const result = webhookActionSchema.safeParse({
      type: 'webhook',
      url: 'https://example.com/{{event.id',
      headers: { 'Webhook-Signature': 'v1,forged', 'bad header': 'x' },
      data: { nested: ['{{> partial}}'] },
    });
    expect(result.error?.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`)).toEqual([
      'url: template is malformed: Unclosed tag at 30',
      'headers.Webhook-Signature: is set by walflow and cannot be overridden',
      'headers.bad header: must be an HTTP header name',
      'data.nested.0: template partials ({{> name}}) are not supported',
    ]);
  });
});
