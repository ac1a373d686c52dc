/**
 * The dialogue before routing: the proxy answers the client as an SMTP server would (RFC 5321
 * §4.1) until MAIL FROM and the first RCPT TO give the facts a route is chosen on. Pipelined
 * commands (RFC 2920) are answered one by one in order, and the replies of one read go out in one
 * write. The RCPT that routes is not answered here: the backend's answer to it is the client's.
 * Commands the client pipelined after that RCPT stay in the reader, read after routing.
 * @module
 */
import type { Conn } from "../proxy/conn.ts";
import { HANDLED, NEED_MORE, ROUTE, refuse, type SniffStep } from "../protocol/module.ts";
import { abort } from "../proxy/finish.ts";
import type { SmtpCommand } from "./command.ts";
import { buildEhloReply, buildReply, errorReply, proxyCapabilities } from "./reply-builder.ts";
import * as R from "./proxy-replies.ts";
import type { SmtpSession } from "./session.ts";

/** What one command does to the dialogue. */
type Answer = "go-on" | "route" | "start-tls" | "quit";

/** Answer every whole command the reader holds; the step for the pipeline. */
export function answerCommands(conn: Conn, s: SmtpSession): SniffStep {
  const out: Uint8Array[] = [];
  for (;;) {
    const ev = s.reader.next();
    if (ev.kind === "need-more") break;
    if (ev.kind === "data" || ev.kind === "message-end") break; // not in data before routing
    if (ev.kind === "error") {
      out.push(errorReply(ev.reason));
      if (ev.closes) return closeWith(conn, s, out, ev.reason);
      if (++s.commands > s.config.maxCommandsBeforeRouting) return closeWith(conn, s, [...out, R.TOO_MANY_COMMANDS], "too_many_commands");
      continue;
    }
    conn.bytesIn += ev.line.length;
    const answer = answer1(conn, s, ev.command, ev.line, out);
    if (answer === "route") {
      send(conn, out);
      return ROUTE;
    }
    if (answer === "start-tls") {
      send(conn, out);
      // RFC 3207 §4.2 / CVE-2011-0411: what was pipelined after STARTTLS is not a command.
      s.restartAfterTls();
      s.phase = "tls-hello";
      return NEED_MORE;
    }
    if (answer === "quit") {
      send(conn, out);
      s.answered = true;
      abort(conn, "client_quit");
      return HANDLED;
    }
    if (++s.commands > s.config.maxCommandsBeforeRouting) return closeWith(conn, s, [...out, R.TOO_MANY_COMMANDS], "too_many_commands");
  }
  send(conn, out);
  return NEED_MORE;
}

function answer1(conn: Conn, s: SmtpSession, c: SmtpCommand, line: Uint8Array, out: Uint8Array[]): Answer {
  const facts = conn.facts!;
  switch (c.kind) {
    case "ehlo":
    case "helo":
      // RFC 5321 §4.1.4: EHLO/HELO resets any transaction.
      s.extended = c.kind === "ehlo";
      s.heloDomain = c.domain;
      s.mailLine = null;
      facts.ehlo = c.domain.toLowerCase();
      facts.mailFrom = null;
      out.push(c.kind === "ehlo" ? ehloReply(conn, s) : buildReply(250, [s.config.hostname]));
      return "go-on";
    case "noop":
      out.push(R.OK);
      return "go-on";
    case "rset":
      s.mailLine = null;
      facts.mailFrom = null;
      out.push(R.OK);
      return "go-on";
    case "quit":
      out.push(R.BYE);
      return "quit";
    case "starttls":
      if (facts.tls !== "none") out.push(R.TLS_ALREADY);
      else if (!offersTls(conn)) out.push(R.TLS_UNAVAILABLE);
      else {
        out.push(R.READY_FOR_TLS);
        return "start-tls";
      }
      return "go-on";
    case "mail":
      if (s.extended === null) out.push(R.NEED_HELO);
      else if (s.config.requireTls && facts.tls === "none") out.push(R.TLS_REQUIRED);
      else if (s.mailLine !== null) out.push(R.NESTED_MAIL);
      else if (c.params.size !== null && c.params.size > s.config.maxMessageBytes) out.push(R.sizeTooLarge(s.config.maxMessageBytes));
      else {
        s.mailLine = line.slice();
        facts.mailFrom = c.reversePath;
        out.push(R.SENDER_OK);
      }
      return "go-on";
    case "rcpt":
      if (s.mailLine === null) {
        out.push(R.NEED_MAIL);
        return "go-on";
      }
      facts.rcptDomain = c.domain;
      if (!routable(conn)) {
        facts.rcptDomain = null;
        out.push(R.NO_ROUTE_FOR_RCPT);
        return "go-on";
      }
      s.rcptLine = line.slice();
      return "route";
    case "data":
      out.push(s.mailLine === null ? R.NEED_MAIL : R.NEED_RCPT);
      return "go-on";
    case "xclient":
      out.push(errorReply("xclient_refused"));
      return "go-on";
    case "vrfy":
      out.push(R.CANNOT_VRFY);
      return "go-on";
    case "help":
      out.push(R.HELP);
      return "go-on";
    case "auth":
    case "bdat":
    case "expn":
      out.push(R.NOT_OFFERED);
      return "go-on";
  }
}

/** The proxy's own EHLO reply (STARTTLS while a certificate is there and TLS is not on yet). */
export function ehloReply(conn: Conn, s: SmtpSession): Uint8Array {
  const caps = proxyCapabilities({
    maxMessageBytes: s.config.maxMessageBytes,
    startTls: conn.facts!.tls === "none" && s.phase === "dialogue" && offersTls(conn),
    smtpUtf8: s.config.smtpUtf8,
  });
  return buildEhloReply(s.config.hostname, "at your service", caps);
}

function offersTls(conn: Conn): boolean {
  return conn.listener.certs?.forName(null) != null;
}

/** A route serves these facts (a resolver module decides later, so with one every recipient goes on). */
function routable(conn: Conn): boolean {
  if (conn.listener.state.resolver) return true;
  return conn.listener.table.match(conn.clientIp, conn.facts!) !== null;
}

function send(conn: Conn, out: readonly Uint8Array[]): void {
  if (out.length === 0) return;
  const bytes = out.length === 1 ? out[0]! : join(out);
  conn.bytesOut += bytes.length;
  conn.client.write(bytes);
}

/** Answer, then close: the refusal is counted under its reason. */
function closeWith(conn: Conn, s: SmtpSession, out: readonly Uint8Array[], reason: string): SniffStep {
  send(conn, out);
  s.answered = true;
  return refuse(reason);
}

export function join(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
