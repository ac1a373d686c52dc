/**
 * The backend handshake, once a route is chosen and its upstream connected (the module's
 * upstreamHandshake): bring the backend to where the client already is, checking each reply.
 *
 *   220 banner ─► EHLO ─► 250 ─► [route xclient: XCLIENT ADDR PORT NAME HELO PROTO ─► 220 ─► EHLO ─► 250] ─► MAIL ─► 250 ─► RCPT ─► reply
 *
 * XCLIENT: Postfix XCLIENT_README ("XCLIENT Command syntax"): the server answers with a new 220
 * greeting and forgets the EHLO, so EHLO is sent again. The backend's reply to RCPT is the client's
 * reply to its first RCPT; then the relay starts, and the commands the client pipelined after that
 * RCPT are read by src/smtp/relay-inspect.ts. A wrong reply fails the connection; the client is
 * told with a 421 that names the reason (the module's farewell).
 * @module
 */
import type { Conn } from "../proxy/conn.ts";
import { NEED_MORE, RELAY, type HandshakeStep } from "../protocol/module.ts";
import { parseReply, type SmtpReply } from "./reply.ts";
import { ehloCapabilities } from "./ehlo-capabilities.ts";
import { buildXclient, UNAVAILABLE } from "./xclient.ts";
import { join } from "./dialogue.ts";
import { startInspecting } from "./relay-inspect.ts";
import type { SmtpSession } from "./session.ts";

const ascii = new TextEncoder();

export function backendStart(conn: Conn): HandshakeStep {
  const s = session(conn);
  s.phase = "backend";
  s.backendStep = "banner";
  return NEED_MORE;
}

export function backendData(conn: Conn, chunk: Uint8Array): HandshakeStep {
  const s = session(conn);
  if (!s.fromBackend.push(chunk)) return fail("upstream_bad_reply", "reply over the bound");
  for (;;) {
    const bytes = s.fromBackend.bytes();
    const parsed = parseReply(bytes);
    if (parsed.kind === "need-more") return NEED_MORE;
    if (parsed.kind === "error") return fail("upstream_bad_reply", parsed.reason);
    const raw = bytes.slice(0, parsed.size);
    s.fromBackend.consume(parsed.size);
    const step = onReply(conn, s, parsed.reply, raw);
    if (s.shortWrite) return fail("upstream_write_short", "the backend did not take a handshake command whole");
    if (step !== null) return step;
  }
}

/** Client bytes during the handshake wait in the reader, unread, until the relay starts. */
export function clientDuringHandshake(conn: Conn, chunk: Uint8Array): HandshakeStep {
  const s = session(conn);
  if (!s.reader.push(chunk)) return fail("smtp_client_unread", "client sent too much before the backend answered");
  conn.client.pause(); // bounded: the reader holds one read at most beyond a line
  return NEED_MORE;
}

/** The step after one backend reply; null: wait for the next reply. */
function onReply(conn: Conn, s: SmtpSession, reply: SmtpReply, raw: Uint8Array): HandshakeStep | null {
  switch (s.backendStep) {
    case "banner":
      if (reply.code !== 220) return fail("upstream_banner", text(reply));
      sendUp(conn, ehlo(s));
      s.backendStep = "ehlo";
      return null;
    case "ehlo": {
      const caps = ehloCapabilities(reply);
      if (caps === null) return fail("upstream_ehlo_refused", text(reply));
      if (conn.route?.config.xclient) {
        if (caps.xclient === null) return fail("upstream_no_xclient", "the backend's EHLO does not offer XCLIENT (smtpd_authorized_xclient_hosts)");
        const lines = buildXclient({
          addr: conn.clientIp === "unix" ? UNAVAILABLE : conn.clientIp,
          port: conn.clientPort,
          name: UNAVAILABLE, // the proxy does not look names up; Postfix then logs "unknown"
          helo: s.heloDomain ?? UNAVAILABLE,
          proto: s.extended ? "ESMTP" : "SMTP",
        }, caps.xclient);
        if (lines.length > 0) {
          sendUp(conn, join(lines));
          s.xclientReplies = lines.length;
          s.backendStep = "xclient";
          return null;
        }
      }
      return sendMail(conn, s);
    }
    case "xclient":
      if (reply.code !== 220 && reply.code !== 250) return fail("upstream_xclient_refused", text(reply));
      if (--s.xclientReplies > 0) return null;
      sendUp(conn, ehlo(s));
      s.backendStep = "ehlo-again";
      return null;
    case "ehlo-again":
      if (reply.code !== 250) return fail("upstream_ehlo_refused", text(reply));
      return sendMail(conn, s);
    case "mail":
      if (reply.code !== 250) return fail("upstream_mail_refused", text(reply));
      sendUp(conn, s.rcptLine!);
      s.backendStep = "rcpt";
      return null;
    case "rcpt":
      // The backend's answer, accepted or not, is the client's answer to its RCPT.
      if (reply.code >= 200 && reply.code < 300) conn.facts!.rcpt!++;
      conn.bytesOut += raw.length;
      conn.client.write(raw);
      startInspecting(conn, s);
      return RELAY;
  }
}

function sendMail(conn: Conn, s: SmtpSession): null {
  sendUp(conn, s.mailLine!);
  s.backendStep = "mail";
  return null;
}

/** EHLO with the client's own domain: the backend's logs and checks see what the client said. */
function ehlo(s: SmtpSession): Uint8Array {
  return ascii.encode(`EHLO ${s.heloDomain ?? "unknown"}\r\n`);
}

/**
 * One command to a socket that has just connected and is waiting for it: the kernel takes it whole.
 * Should it not, the handshake fails rather than go on with a command cut short.
 */
function sendUp(conn: Conn, bytes: Uint8Array): void {
  if (conn.upstream!.write(bytes) !== bytes.length) session(conn).shortWrite = true;
}

function text(reply: SmtpReply): string {
  return `${reply.code} ${reply.lines.join(" / ")}`.slice(0, 300);
}

function fail(reason: string, detail: string): HandshakeStep {
  return { kind: "fail", reason, detail };
}

function session(conn: Conn): SmtpSession {
  return conn.intake!.state as SmtpSession;
}
