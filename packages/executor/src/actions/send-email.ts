import { isWalflowError, untilAborted, WalflowError, type EventEnvelope } from '@walflow/core';
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import nodemailer from 'nodemailer';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import { z } from 'zod';
import { mustacheTemplate, renderText } from '../render-mustache.js';
import { isWholePlaceholder } from '../template.js';
import { nonPublicReason } from './address-guard.js';
import type { ExternalAction } from './external-action.js';

export const sendEmailActionSchema = z
  .strictObject({
    type: z.literal('send_email'),
    /** One or more addresses, comma-separated; may be a template such as `{{event.payload.email}}`. */
    to: mustacheTemplate.min(1),
    subject: mustacheTemplate.min(1),
    /** Plain-text body, rendered without escaping. */
    text: mustacheTemplate.optional(),
    /** HTML body: `{{x}}` is HTML-escaped, `{{{x}}}` is inserted as it is. */
    html: mustacheTemplate.optional(),
    cc: mustacheTemplate.optional(),
    bcc: mustacheTemplate.optional(),
    replyTo: mustacheTemplate.optional(),
  })
  .refine((action) => action.text !== undefined || action.html !== undefined, {
    message: 'send_email needs text or html',
    path: ['text'],
  });

export type SendEmailAction = z.output<typeof sendEmailActionSchema>;

export const IDEMPOTENCY_HEADER = 'X-Walflow-Idempotency-Key';

/** Deliberately plain: catches a template that rendered to a name or nothing, not every RFC 5321 corner. */
const EMAIL_ADDRESS = /^[^\s@"(),:;<>[\]\\]+@(?:[\p{L}\p{N}-]+\.)*[\p{L}\p{N}-]+$/u;

/**
 * Sends one mail through the configured SMTP server. The Message-ID is derived from the idempotency key, so
 * a retried send carries the same Message-ID and receivers (or the relay) can drop the duplicate.
 */
export const sendEmailAction: ExternalAction<SendEmailAction> = {
  async execute(action, context) {
    const smtp = context.runtime.smtp;
    if (smtp === undefined) {
      throw new WalflowError('action_failed', 'send_email cannot run: SMTP is not configured (set smtp host, port and from)');
    }
    const { event, signal } = context;
    const to = renderAddresses('to', action.to, event);
    if (to.length === 0) throw new WalflowError('action_failed', `send_email "to" rendered to no address (template ${JSON.stringify(action.to)})`);
    const cc = action.cc === undefined ? [] : renderAddresses('cc', action.cc, event);
    const bcc = action.bcc === undefined ? [] : renderAddresses('bcc', action.bcc, event);
    const replyTo = action.replyTo === undefined ? [] : renderAddresses('replyTo', action.replyTo, event);
    const subject = renderText(action.subject, event, { escape: 'none' });
    const text = action.text === undefined ? undefined : renderText(action.text, event, { escape: 'none' });
    const html = action.html === undefined ? undefined : renderText(action.html, event, { escape: 'html' });
    const messageId = deterministicMessageId(context.idempotencyKey, smtp.from);

    let socket: Socket | undefined;
    try {
      // Our own socket, so an abort tears the SMTP conversation down instead of leaving it to nodemailer's timeouts.
      socket = await untilAborted(connectSocket(smtp.host, smtp.port, signal), signal);
      const transport = nodemailer.createTransport({
        host: smtp.host,
        port: smtp.port,
        secure: smtp.secure ?? false,
        connection: socket,
        ...(smtp.user === undefined ? {} : { auth: { user: smtp.user, pass: smtp.password ?? '' } }),
        // Credentials never cross a network in clear. nodemailer's STARTTLS is taken only when offered, so a relay
        // that does not offer it, or a network that strips the offer, would be sent the password as it is.
        requireTLS: smtp.user !== undefined && !(smtp.secure ?? false) && nonPublicReason(socket.remoteAddress ?? '') !== 'loopback',
      });
      const info = await untilAborted(
        transport.sendMail({
          from: smtp.from,
          to,
          ...(cc.length === 0 ? {} : { cc }),
          ...(bcc.length === 0 ? {} : { bcc }),
          ...(replyTo.length === 0 ? {} : { replyTo }),
          subject,
          ...(text === undefined ? {} : { text }),
          ...(html === undefined ? {} : { html }),
          messageId,
          headers: { [IDEMPOTENCY_HEADER]: context.idempotencyKey },
        }),
        signal,
      );
      return {
        messageId: info.messageId,
        accepted: info.accepted.map(addressText),
        rejected: info.rejected.map(addressText),
        to: to.map(addressText),
      };
    } catch (error) {
      socket?.destroy();
      if (signal.aborted) throw new WalflowError('action_failed', `send_email ${abortText(signal)}`, { cause: error });
      throw WalflowError.from(error, 'action_failed', 'send_email failed');
    }
  },
};

/**
 * Display names are kept ("Grace Hopper <grace@example.com>"); nodemailer encodes them. A field that is one
 * `{{event.path}}` takes its value as the address list; a `{{value}}` placed among other text may hold no
 * address list syntax: `{{event.payload.name}} <{{event.payload.email}}>` with a name of
 * `x <evil@example.com>, Bob` would otherwise mail evil@example.com too.
 */
function renderAddresses(field: string, source: string, event: EventEnvelope): { name: string; address: string }[] {
  let rendered: string;
  try {
    rendered = renderText(source, event, { escape: isWholePlaceholder(source) ? 'none' : 'address' });
  } catch (error) {
    throw isWalflowError(error, 'action_failed') ? new WalflowError('action_failed', `send_email "${field}": ${error.message}`) : error;
  }
  return addressparser(rendered, { flatten: true }).map(({ name, address }) => {
    if (!EMAIL_ADDRESS.test(address)) {
      const shown = JSON.stringify(address === '' ? name : address);
      throw new WalflowError('action_failed', `send_email "${field}" has an invalid address ${shown} (rendered from ${JSON.stringify(rendered)})`);
    }
    return { name, address };
  });
}

/** The same key always gives the same Message-ID; the key itself (`run:index`) is not a valid id-left. */
function deterministicMessageId(idempotencyKey: string, from: string): string {
  const digest = createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 40);
  const domain = addressparser(from, { flatten: true })[0]?.address.split('@')[1] ?? 'walflow.invalid';
  return `<walflow.${digest}@${domain}>`;
}

function connectSocket(host: string, port: number, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // The socket's own signal destroys it whenever the action times out, also mid-conversation.
    const socket = connect({ host, port, signal });
    // Absorbs an error in the ticks before nodemailer listens and after it stops listening; nodemailer still sees its own.
    socket.on('error', () => undefined);
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

function abortText(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return reason instanceof Error && reason.name === 'TimeoutError' ? 'timed out' : 'was aborted';
}

function addressText(address: string | { address: string }): string {
  return typeof address === 'string' ? address : address.address;
}
