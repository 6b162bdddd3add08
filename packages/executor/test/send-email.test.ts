import { isWalflowError, parseLsn, type EventEnvelope } from '@walflow/core';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import type { ActionRuntime, ExternalActionContext } from '../src/actions/external-action.js';
import { sendEmailAction, sendEmailActionSchema, type SendEmailAction } from '../src/actions/send-email.js';
import { parseWorkflowDefinition } from '../src/workflow-definition.js';
import type { StoredWorkflow } from '../src/workflow-store.js';

interface ReceivedMail {
  from: string | undefined;
  recipients: string[];
  raw: string;
}

const event: EventEnvelope = {
  id: '0f5a3c1e-0000-4000-8000-000000000001',
  type: 'recruit.graduated_to_agent',
  tenantId: 'graduation',
  aggregateType: 'recruit',
  aggregateId: 'r-42',
  payload: { name: 'Ada', email: 'ada@example.com', manager: 'Grace Hopper <grace@example.com>', note: 'Tom & Jerry <3' },
  metadata: { actorId: 'u1' },
  xid: '812',
  commitLsn: parseLsn('0/16B3748'),
  committedAt: '2024-05-01T12:00:00.123456Z',
  position: 0,
};

const action: SendEmailAction = sendEmailActionSchema.parse({
  type: 'send_email',
  to: '{{event.payload.email}}',
  cc: '{{event.payload.manager}}',
  subject: 'Welcome {{event.payload.name}} & co',
  text: 'Hello {{event.payload.name}}, recruit {{event.aggregateId}} is now an agent. {{event.payload.note}}',
  html: '<p>Hello {{event.payload.name}}: {{event.payload.note}}</p>',
});

const workflow: StoredWorkflow = {
  id: 'wf-1',
  tenantId: 'graduation',
  name: 'welcome-agent',
  status: 'active',
  pausedReason: null,
  triggerEvent: 'recruit.graduated_to_agent',
  version: 1,
  definition: parseWorkflowDefinition({ tenant: 'graduation', name: 'welcome-agent', trigger: { event: 'recruit.graduated_to_agent' }, actions: [action] }),
  updatedAt: new Date(),
};

const servers: SMTPServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
});

async function startSmtp(options: Partial<SMTPServerOptions> = {}, host = '127.0.0.1'): Promise<{ port: number; received: ReceivedMail[] }> {
  const received: ReceivedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    closeTimeout: 100,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom === false ? undefined : session.envelope.mailFrom.address,
          recipients: session.envelope.rcptTo.map((recipient) => recipient.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
    ...options,
  });
  // A client that hangs up mid-conversation (the abort test) is an 'error' on the server; expected here.
  server.on('error', () => undefined);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { port: (server.server.address() as AddressInfo).port, received };
}

function contextFor(runtime: Partial<ActionRuntime>, signal: AbortSignal = AbortSignal.timeout(10_000)): ExternalActionContext {
  return {
    event,
    workflow,
    runId: '7d0c2f5e-0000-4000-8000-000000000099',
    actionIndex: 1,
    idempotencyKey: '7d0c2f5e-0000-4000-8000-000000000099:1',
    signal,
    runtime: { secrets: new Map(), webhookAllowHosts: [], ...runtime },
  };
}

/** Header values by lower-case name, folded lines joined. */
function headersOf(raw: string): Map<string, string> {
  const head = raw.split('\r\n\r\n')[0] ?? '';
  const headers = new Map<string, string>();
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

async function failureOf(promise: Promise<unknown>): Promise<Error> {
  const error: unknown = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(isWalflowError(error, 'action_failed')).toBe(true);
  return error as Error;
}

/** An address of this machine other than loopback, if it has one: a relay there is across a network, as far as walflow can tell. */
const networkAddress = Object.values(networkInterfaces())
  .flat()
  .find((candidate) => candidate?.family === 'IPv4' && !candidate.internal)?.address;

describe('send_email', () => {
  it('sends the templated mail with a Message-ID and idempotency header that survive a retry', async () => {
    const smtp = await startSmtp();
    const context = contextFor({ smtp: { host: '127.0.0.1', port: smtp.port, from: 'Walflow <walflow@example.org>' } });

    const result = await sendEmailAction.execute(action, context);
    const retried = await sendEmailAction.execute(action, context);

    expect(result).toEqual({
      messageId: expect.stringMatching(/^<walflow\.[0-9a-f]{40}@example\.org>$/),
      accepted: ['ada@example.com', 'grace@example.com'],
      rejected: [],
      to: ['ada@example.com'],
    });
    expect(retried.messageId).toBe(result.messageId);
    expect(smtp.received).toHaveLength(2);
    const [first, second] = smtp.received;
    expect(first?.from).toBe('walflow@example.org');
    expect(first?.recipients).toEqual(['ada@example.com', 'grace@example.com']);

    const headers = headersOf(first?.raw ?? '');
    expect(headers.get('subject')).toBe('Welcome Ada & co');
    expect(headers.get('to')).toBe('ada@example.com');
    expect(headers.get('cc')).toBe('Grace Hopper <grace@example.com>');
    expect(headers.get('x-walflow-idempotency-key')).toBe('7d0c2f5e-0000-4000-8000-000000000099:1');
    expect(headers.get('message-id')).toBe(result.messageId);
    expect(headersOf(second?.raw ?? '').get('message-id')).toBe(result.messageId);

    // Plain text is not HTML-escaped; the HTML part is.
    expect(first?.raw).toContain('Hello Ada, recruit r-42 is now an agent. Tom & Jerry <3');
    expect(first?.raw).toContain('<p>Hello Ada: Tom &amp; Jerry &lt;3</p>');
  });

  it('fails with the server message when the recipient is rejected', async () => {
    const smtp = await startSmtp({
      onRcptTo(address, _session, callback) {
        const error = Object.assign(new Error(`Mailbox ${address.address} does not exist`), { responseCode: 550 });
        callback(error);
      },
    });
    const toAdaOnly: SendEmailAction = { ...action, cc: undefined };
    const error = await failureOf(
      sendEmailAction.execute(toAdaOnly, contextFor({ smtp: { host: '127.0.0.1', port: smtp.port, from: 'walflow@example.org' } })),
    );
    expect(error.message).toMatch(/^send_email failed: /);
    expect(error.message).toContain('550 Mailbox ada@example.com does not exist');
    expect(smtp.received).toHaveLength(0);
  });

  it('fails clearly when SMTP is not configured', async () => {
    const error = await failureOf(sendEmailAction.execute(action, contextFor({})));
    expect(error.message).toBe('send_email cannot run: SMTP is not configured (set smtp host, port and from)');
  });

  it('fails clearly when the rendered recipient is not an address', async () => {
    const smtp = await startSmtp();
    const error = await failureOf(
      sendEmailAction.execute(
        sendEmailActionSchema.parse({ type: 'send_email', to: '{{event.payload.name}}', subject: 'x', text: 'y' }),
        contextFor({ smtp: { host: '127.0.0.1', port: smtp.port, from: 'walflow@example.org' } }),
      ),
    );
    expect(error.message).toBe('send_email "to" has an invalid address "Ada" (rendered from "Ada")');
    const empty = await failureOf(
      sendEmailAction.execute(
        sendEmailActionSchema.parse({ type: 'send_email', to: '{{event.payload.missing}}', subject: 'x', text: 'y' }),
        contextFor({ smtp: { host: '127.0.0.1', port: smtp.port, from: 'walflow@example.org' } }),
      ),
    );
    expect(empty.message).toBe('send_email "to" rendered to no address (template "{{event.payload.missing}}")');
    expect(smtp.received).toHaveLength(0);
  });

  it('refuses a value that would add a recipient to an address written around it; a whole-field value is the list', async () => {
    const smtp = await startSmtp();
    const hostile = { ...contextFor({ smtp: { host: '127.0.0.1', port: smtp.port, from: 'walflow@example.org' } }), event: { ...event, payload: { ...event.payload, name: 'x <evil@attacker.example>, Bob' } } };
    const error = await failureOf(
      sendEmailAction.execute(sendEmailActionSchema.parse({ type: 'send_email', to: '{{event.payload.name}} <{{event.payload.email}}>', subject: 'x', text: 'y' }), hostile),
    );
    expect(error.message).toBe(
      'send_email "to": the value "x <evil@attacker.example>, Bob" holds address list syntax (, ; < > " ( ) : \\ [ ] or a line break), which could add recipients',
    );
    expect(smtp.received).toHaveLength(0);
    const domain = { ...hostile, event: { ...event, payload: { ...event.payload, user: 'attacker@evil.example x' } } };
    const redirected = await failureOf(sendEmailAction.execute(sendEmailActionSchema.parse({ type: 'send_email', to: '{{event.payload.user}}@corp.example', subject: 'x', text: 'y' }), domain));
    expect(redirected.message).toBe('send_email "to": the value "attacker@evil.example x" holds an @ and a space, which could make it the address');
    expect(smtp.received).toHaveLength(0);

    const named = await sendEmailAction.execute(
      sendEmailActionSchema.parse({ type: 'send_email', to: '{{event.payload.name}} <{{event.payload.email}}>', subject: 'x', text: 'y' }),
      contextFor({ smtp: { host: '127.0.0.1', port: smtp.port, from: 'walflow@example.org' } }),
    );
    expect(named.to).toEqual(['ada@example.com']);
    expect(headersOf(smtp.received[0]?.raw ?? '').get('to')).toBe('Ada <ada@example.com>');
  });

  it('gives up when the signal aborts mid-conversation', async () => {
    const smtp = await startSmtp({
      onData(stream) {
        // Never answers the DATA: the action's timeout has to end the conversation.
        stream.resume();
      },
    });
    const started = Date.now();
    const error = await failureOf(
      sendEmailAction.execute(action, contextFor({ smtp: { host: '127.0.0.1', port: smtp.port, from: 'walflow@example.org' } }, AbortSignal.timeout(300))),
    );
    expect(error.message).toBe('send_email timed out');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('rejects a workflow without a body or with a broken template when it is applied', () => {
    const missingBody = sendEmailActionSchema.safeParse({ type: 'send_email', to: 'a@example.com', subject: 'x' });
    expect(missingBody.error?.issues.map((issue) => issue.message)).toEqual(['send_email needs text or html']);
    const broken = sendEmailActionSchema.safeParse({ type: 'send_email', to: '{{event.payload.email', subject: 'x', text: '{{> footer}}' });
    expect(broken.error?.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`)).toEqual([
      'to: template is malformed: Unclosed tag at 21',
      'text: template partials ({{> name}}) are not supported',
    ]);
  });

  it.skipIf(networkAddress === undefined)('never sends credentials in clear across a network: a relay that offers no STARTTLS is refused before AUTH, one on loopback is not', async () => {
    const passwords: string[] = [];
    const withAuth: Partial<SMTPServerOptions> = {
      authOptional: false,
      allowInsecureAuth: true,
      onAuth(auth, _session, callback) {
        passwords.push(auth.password ?? '');
        callback(null, { user: auth.username });
      },
    };
    const host = networkAddress!;
    const remote = await startSmtp(withAuth, host);
    const credentials = { user: 'walflow', password: 'relay-password', from: 'walflow@example.org' };
    const refused = await failureOf(sendEmailAction.execute(action, contextFor({ smtp: { host, port: remote.port, ...credentials } })));
    expect(refused.message).toMatch(/STARTTLS/i);
    expect(passwords).toEqual([]);
    expect(remote.received).toHaveLength(0);

    const local = await startSmtp(withAuth);
    await sendEmailAction.execute(action, contextFor({ smtp: { host: '127.0.0.1', port: local.port, ...credentials } }));
    expect(passwords).toEqual(['relay-password']);
    expect(local.received).toHaveLength(1);
  });
});
