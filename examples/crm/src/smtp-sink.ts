import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** One mail as the sink received it. */
export interface CapturedEmail {
  from: string | null;
  to: string[];
  subject: string;
  messageId: string;
  raw: string;
}

/** A local SMTP server that accepts every mail (or all but some) and keeps it in memory: walflow's SMTP in the demo and tests. */
export interface SmtpSink {
  /** `smtp://127.0.0.1:<port>`, for WALFLOW_SMTP_URL. */
  url: string;
  port: number;
  received: CapturedEmail[];
  close(): Promise<void>;
}

/** `refuses`: recipients the sink answers 550 (mailbox unavailable), as a server does for an address that is gone. */
export async function startSmtpSink(options: { refuses?: (address: string) => boolean } = {}): Promise<SmtpSink> {
  const received: CapturedEmail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    closeTimeout: 100,
    onRcptTo(address, _session, callback) {
      callback(options.refuses?.(address.address) ? Object.assign(new Error('mailbox unavailable'), { responseCode: 550 }) : undefined);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const headers = parseHeaders(raw);
        received.push({
          from: session.envelope.mailFrom === false ? null : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((recipient) => recipient.address),
          subject: headers.get('subject') ?? '',
          messageId: headers.get('message-id') ?? '',
          raw,
        });
        callback();
      });
    },
  });
  // A client that hangs up mid-conversation is an 'error' of the server, not of the process.
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The header block's fields by lower-case name, folded lines joined (enough for the ASCII headers walflow sends). */
function parseHeaders(raw: string): Map<string, string> {
  const block = raw.split(/\r?\n\r?\n/, 1)[0] ?? '';
  const fields = new Map<string, string>();
  for (const line of block.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return fields;
}
