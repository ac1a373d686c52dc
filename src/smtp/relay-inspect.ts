/**
 * After routing, the relay still reads the SMTP stream in both directions, because what makes
 * SMTP proxying safe is in commands and bodies that come later:
 *
 * - every message body is scanned (src/smtp/data-body.ts): it ends only at CRLF "." CRLF however
 *   the reads split it, and a bare LF or CR refuses it (SMTP smuggling, CVE-2023-51764 class): the
 *   client gets 550 and the backend's connection is closed mid-DATA, so it discards the message;
 * - a message over smtp.maxMessageBytes gets 552 and the session closes (the same way);
 * - a later RCPT whose domain another route serves gets 451 4.3.0, so the sender retries it in a
 *   transaction of its own, which then reaches its own backend;
 * - EHLO again gets the proxy's capabilities, not the backend's (which may offer what the proxy
 *   does not relay: STARTTLS, XCLIENT, CHUNKING); STARTTLS, AUTH, BDAT and XCLIENT are answered here.
 *
 * Replies go to the client in the order of its commands (RFC 2920 §3) although some come from the
 * backend and some from the proxy: each command leaves an owed reply (src/smtp/session.ts), and the
 * backend's replies are matched to them as they come. A DATA holds the commands after it until its
 * reply: 354 starts the body, anything else means the next bytes are commands.
 * Bytes move with the relay's own handlers (src/relay/userspace.ts), which keep order and
 * backpressure; the connection stays in userspace (markUserspaceOnly) since every byte is read.
 * @module
 */
import type { Socket, SocketHandler } from "bun";
import { NOT_OURS, type Conn } from "../proxy/conn.ts";
import { ConnFacts } from "../protocol/facts.ts";
import { abort } from "../proxy/finish.ts";
import { CLIENT_HANDLERS, UPSTREAM_HANDLERS } from "../relay/userspace.ts";
import { replyExtent } from "./reply.ts";
import { errorReply } from "./reply-builder.ts";
import { ehloReply } from "./dialogue.ts";
import * as R from "./proxy-replies.ts";
import type { SmtpSession } from "./session.ts";
import type { SmtpCommand } from "./command.ts";

const relayUp = CLIENT_HANDLERS.data!;
const relayDown = UPSTREAM_HANDLERS.data!;

/** The backend handshake is done: read what the client pipelined after its first RCPT. */
export function startInspecting(conn: Conn, s: SmtpSession): void {
  s.phase = "relay";
  pump(conn, s);
}

/** ProtocolModule.relayClientData: a client chunk after routing. */
export function inspectClient(conn: Conn, chunk: Uint8Array): void {
  const s = conn.intake!.state as SmtpSession;
  conn.lastActive = performance.now();
  if (!s.reader.push(chunk)) return abort(conn, "smtp_client_unread", `client sent more than the bound without reading replies (${chunk.length} after ${s.reader.pending})`);
  if (s.phase !== "relay") return void conn.client.pause(); // still dialling: read once the backend is where the client is
  pump(conn, s);
}

/** The relay's upstream handlers, with the backend's replies matched to the commands that asked for them. */
export const SMTP_UPSTREAM_HANDLERS: Omit<SocketHandler<Conn>, "open"> = {
  ...UPSTREAM_HANDLERS,
  data(upstream: Socket<Conn>, chunk: Buffer) {
    const conn = upstream.data;
    if (conn.flags & NOT_OURS) return;
    const s = conn.intake!.state as SmtpSession;
    conn.lastActive = performance.now();
    if (!s.fromBackend.push(chunk)) return abort(conn, "upstream_bad_reply", "reply over the bound");
    for (;;) {
      const bytes = s.fromBackend.bytes();
      const parsed = replyExtent(bytes); // passed on as it is: only its code matters here
      if (parsed.kind === "need-more") break;
      if (parsed.kind === "error") return abort(conn, "upstream_bad_reply", parsed.reason);
      const raw = bytes.subarray(0, parsed.size);
      s.fromBackend.consume(parsed.size);
      backendReply(conn, s, parsed.code, raw);
      if (conn.reason !== null) return;
    }
    if (!s.holding) pump(conn, s);
  },
};

function backendReply(conn: Conn, s: SmtpSession, code: number, raw: Uint8Array): void {
  // A reply nobody asked for (a 421 before the backend closes) goes on as it is.
  const owed = s.owed.shift();
  if (owed?.kind === "ehlo" && code === 250) down(conn, ehloReply(conn, s));
  else down(conn, raw);
  if (owed?.kind === "rcpt" && code >= 200 && code < 300) conn.facts!.rcpt!++;
  if (owed?.kind === "data") {
    s.holding = false;
    if (code === 354) s.reader.startData();
  }
  flushLocal(conn, s);
}

/** Local replies at the head of the owed list have nothing before them any more: send them. */
function flushLocal(conn: Conn, s: SmtpSession): void {
  while (s.owed.length > 0 && s.owed[0]!.kind === "local") down(conn, (s.owed.shift() as { bytes: Uint8Array }).bytes);
}

/** Read the client's events until one must wait (DATA's reply) or there are no more. */
function pump(conn: Conn, s: SmtpSession): void {
  while (!s.holding && conn.reason === null) {
    const ev = s.reader.next();
    switch (ev.kind) {
      case "need-more":
        return;
      case "error":
        if (ev.closes) return closeWith(conn, errorReply(ev.reason), ev.reason);
        local(conn, s, errorReply(ev.reason));
        continue;
      case "data":
        if (ev.tooLarge) return closeWith(conn, R.sizeTooLarge(s.config.maxMessageBytes), "message_too_large");
        up(conn, ev.bytes);
        continue;
      case "message-end":
        if (ev.tooLarge) return closeWith(conn, R.sizeTooLarge(s.config.maxMessageBytes), "message_too_large");
        up(conn, ev.bytes);
        s.owed.push({ kind: "backend" });
        continue;
      case "command":
        command(conn, s, ev.command, ev.line);
        continue;
    }
  }
}

function command(conn: Conn, s: SmtpSession, c: SmtpCommand, line: Uint8Array): void {
  switch (c.kind) {
    case "rcpt":
      if (otherRoute(conn, c.domain)) return local(conn, s, R.OTHER_ROUTE_RCPT);
      return forward(conn, s, line, "rcpt");
    case "data":
      forward(conn, s, line, "data");
      // RFC 2920 §3.1: DATA ends a pipelined group; what follows is the body only once 354 says so.
      // The client is not paused meanwhile (it waits for 354, and a pause and resume per message
      // cost six syscalls): what it sends early waits in the reader, bounded by its read limit.
      s.holding = true;
      return;
    case "ehlo":
    case "helo":
      s.extended = c.kind === "ehlo";
      return forward(conn, s, line, c.kind === "ehlo" ? "ehlo" : "backend");
    case "starttls":
      return local(conn, s, R.TLS_AFTER_ROUTING);
    case "xclient":
      return local(conn, s, errorReply("xclient_refused"));
    case "auth":
    case "bdat":
      return local(conn, s, R.NOT_OFFERED);
    default:
      return forward(conn, s, line, "backend");
  }
}

/** Whether another route than this connection's serves `domain` (a resolver's placement is not second-guessed). */
function otherRoute(conn: Conn, domain: string): boolean {
  const mine = conn.route;
  if (mine === null) return false;
  const probe = Object.assign(new ConnFacts(), conn.facts);
  probe.rcptDomain = domain;
  return conn.listener.table.match(conn.clientIp, probe) !== mine;
}

function forward(conn: Conn, s: SmtpSession, line: Uint8Array, owed: "backend" | "ehlo" | "data" | "rcpt"): void {
  up(conn, line);
  s.owed.push({ kind: owed });
}

/** The proxy's own reply, in its place among the owed ones. */
function local(conn: Conn, s: SmtpSession, bytes: Uint8Array): void {
  if (s.owed.length === 0) down(conn, bytes);
  else s.owed.push({ kind: "local", bytes });
}

function up(conn: Conn, bytes: Uint8Array): void {
  relayUp(conn.client, bytes as Buffer);
}

function down(conn: Conn, bytes: Uint8Array): void {
  relayDown(conn.upstream!, bytes as Buffer);
}

/** Tell the client why, then close both sides: the backend, mid-DATA, discards the message. */
function closeWith(conn: Conn, reply: Uint8Array, reason: string): void {
  conn.bytesOut += reply.length;
  conn.client.write(reply);
  abort(conn, reason);
}
