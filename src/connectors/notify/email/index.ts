// The `email` notifier: SMTP through nodemailer (host, port, implicit TLS or STARTTLS, auth), or — the
// embedded default when no host is set — a file transport that writes each message as an `.eml` file
// into the data folder, so the demo needs no mail server.
// - A message with an invitation carries the iTIP object as nodemailer's `icalEvent`: a
//   `text/calendar; method=…` alternative body plus an `invite.ics` attachment, the layout Gmail and
//   Outlook update in place (targets.md §7.2; adding our own .ics attachment too would duplicate it).
// - ORGANIZER is the From address (receivers authenticate updates and cancellations by it).
// - The Message-ID is derived from the message key, so a retried send is recognisably the same message.
// - Failures are classified without the server's text (it may quote the recipient's address).
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport';
import { ConnectionMisconfigured, fail, ok, type ConnectionContext, type ConnectorFailure, type NotifierClient, type NotifierConnector, type OutboundMessage } from '../../types.ts';
import { itipObject, type Party } from './imip.ts';

export const PLATFORM = 'email';

/** `"Clinic <office@clinic.example>"` or a bare address. */
export function parseSender(from: unknown): Party {
  const m = typeof from === 'string' ? /^\s*(?:"?([^"<]*?)"?\s*<([^<>\s@]+@[^<>\s@]+)>|([^<>\s@]+@[^<>\s@]+))\s*$/.exec(from) : null;
  if (!m) throw new ConnectionMisconfigured('the e-mail connection needs `config.from`, e.g. "Lotus Clinic <appointments@lotus.example>"');
  return m[2] ? { email: m[2], name: m[1]?.trim() || undefined } : { email: m[3] };
}

function messageIdFor(key: string, sender: Party): string {
  return `<${createHash('sha256').update(key).digest('hex').slice(0, 32)}@${sender.email.split('@')[1]}>`;
}

/** SMTP failures by class: a refused login needs a human, 4xx and network trouble retry, 5xx will not work. */
export function smtpFailure(err: unknown): ConnectorFailure {
  const e = err as { code?: string; responseCode?: number };
  const what = `SMTP ${e.code ?? 'error'}${e.responseCode ? ` ${e.responseCode}` : ''}`;
  if (e.code === 'EAUTH' || e.responseCode === 535 || e.responseCode === 534) return { class: 'auth', status: e.responseCode, message: `${what}: the server refused the login` };
  if (e.responseCode && e.responseCode >= 500) return { class: 'permanent', status: e.responseCode, message: `${what}: the server refused the message` };
  if (e.responseCode && e.responseCode >= 400) return { class: 'transient', status: e.responseCode, message: `${what}: the server asked to try later` };
  if (e.code === 'ECONFIG') return { class: 'permanent', message: `${what}: the mail settings are not usable` };
  return { class: 'transient', message: `${what}: the mail server could not be reached` };
}

function transportFor(ctx: ConnectionContext): { transport: Transporter; folder?: string } {
  const c = ctx.config;
  if (typeof c.host === 'string' && c.host && c.transport !== 'file') {
    const secure = c.secure === true;
    const opts: SMTPTransport.Options = {
      host: c.host,
      port: typeof c.port === 'number' ? c.port : secure ? 465 : 587,
      secure,
      // STARTTLS is required unless the connection says otherwise (a loopback relay, a test server).
      requireTLS: c.requireTLS !== false && !secure,
      ignoreTLS: c.requireTLS === false && c.ignoreTLS === true,
      auth: typeof c.user === 'string' ? { user: c.user, pass: ctx.secrets.password ?? '' } : undefined,
      tls: c.allowSelfSigned === true ? { rejectUnauthorized: false } : undefined,
      connectionTimeout: 15_000, greetingTimeout: 10_000, socketTimeout: 30_000,
    };
    return { transport: nodemailer.createTransport(opts) };
  }
  const folder = typeof c.folder === 'string' && c.folder ? c.folder : join(ctx.dataDir ?? '.', 'mail');
  return { transport: nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' }), folder };
}

export function createClient(ctx: ConnectionContext): NotifierClient {
  const sender = parseSender(ctx.config.from);
  const { transport, folder } = transportFor(ctx);
  return {
    async send(m: OutboundMessage) {
      if (!m.to.email) return fail({ class: 'permanent', message: 'the message has no e-mail recipient' });
      const to: Party = { email: m.to.email, name: m.to.name };
      const ics = m.calendar ?? (m.invitation ? { method: m.invitation.method, ics: itipObject(m.invitation, sender, to, ctx.now()) } : undefined);
      const messageId = messageIdFor(m.key, sender);
      try {
        const info = await transport.sendMail({
          from: sender.name ? { name: sender.name, address: sender.email } : sender.email,
          to: to.name ? { name: to.name, address: to.email } : to.email,
          replyTo: typeof ctx.config.replyTo === 'string' ? ctx.config.replyTo : undefined,
          subject: m.subject ?? '',
          text: m.text,
          html: m.html,
          messageId,
          date: ctx.now(),
          headers: { 'Auto-Submitted': 'auto-generated' },
          icalEvent: ics ? { method: ics.method, filename: 'invite.ics', content: ics.ics } : undefined,
        });
        if (folder) {
          mkdirSync(folder, { recursive: true, mode: 0o700 });
          const name = `${ctx.now().toISOString().replace(/[:.]/g, '-')}-${messageId.slice(1, 13)}.eml`;
          // Patient data: readable by the service's user only.
          writeFileSync(join(folder, name), (info as unknown as { message: Buffer }).message, { mode: 0o600 });
        }
        return ok({ providerId: messageId });
      } catch (err) {
        return fail(smtpFailure(err));
      }
    },
  };
}

export const connector: NotifierConnector = {
  descriptor: {
    id: PLATFORM,
    role: 'notifier',
    displayName: 'E-mail (SMTP)',
    auth: [{ key: 'password', label: 'SMTP password (with `config.user`)', secret: true, required: false }],
    configFields: [
      { key: 'from', label: 'Sender', type: 'text', required: true, placeholder: 'Lotus Clinic <appointments@lotus.example>', help: 'The From address, with a name if you like.' },
      { key: 'host', label: 'SMTP server', type: 'text', placeholder: 'smtp.example.com', help: 'Empty: messages are written as .eml files into the data folder, not sent.' },
      { key: 'port', label: 'Port', type: 'number', placeholder: '587', help: '587 with STARTTLS, 465 with TLS.' },
      { key: 'user', label: 'SMTP user name', type: 'text', help: 'Its password goes under Credentials.' },
      { key: 'secure', label: 'TLS from the start (port 465)', type: 'boolean', default: false },
      { key: 'requireTLS', label: 'Require STARTTLS', type: 'boolean', default: true, help: 'Turn off only for a server on this machine or a trusted network.' },
      { key: 'replyTo', label: 'Reply-to address', type: 'email', help: 'Where patients\' answers go, if not the sender.' },
    ],
    fidelity:
      'Sends e-mail over SMTP (STARTTLS required unless turned off; implicit TLS with `secure: true`), or without a host writes each message as an .eml file into the data folder. '
      + 'Patient messages carry an iMIP invitation (REQUEST on booking and changes, CANCEL on cancellation, one UID per appointment), so the visit lands, moves and disappears in the patient\'s own calendar. '
      + 'SMTP gives no delivery receipts and patients cannot answer through it: replies go to the sender mailbox.',
    capabilities: { email: true, sms: false, webhooks: false, deliveryStatus: false, replies: false },
  },
  client: createClient,
  async verifyCredentials(ctx) {
    const { transport, folder } = transportFor(ctx);
    // The file transport (no host) has nothing to log in to.
    if (folder) return ok({ account: `files in ${folder}` });
    try {
      await transport.verify();
      return ok({ account: typeof ctx.config.user === 'string' ? ctx.config.user : undefined });
    } catch (err) {
      return fail(smtpFailure(err));
    } finally {
      transport.close();
    }
  },
  checkConfig(config) {
    const out: { key: string; message: string }[] = [];
    try {
      parseSender(config.from);
    } catch (e) {
      out.push({ key: 'from', message: (e as Error).message });
    }
    if (config.port !== undefined && (typeof config.port !== 'number' || !Number.isInteger(config.port) || config.port < 1 || config.port > 65535)) out.push({ key: 'port', message: 'a port number from 1 to 65535' });
    if (config.transport !== undefined && config.transport !== 'smtp' && config.transport !== 'file') out.push({ key: 'transport', message: 'either "smtp" or "file"' });
    return out;
  },
};
