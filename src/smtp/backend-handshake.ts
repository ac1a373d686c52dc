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
import { parseReply, replyExtent, type SmtpReply } from "./reply.ts";
import { ehloCapabilities, type EhloCapabilities } from "./ehlo-capabilities.ts";
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
    // Only the code is read here; the text is decoded for the EHLO reply and for a failure's log.
    const parsed = replyExtent(bytes);
    if (parsed.kind === "need-more") return NEED_MORE;
    if (parsed.kind === "error") return fail("upstream_bad_reply", parsed.reason);
    const raw = bytes.slice(0, parsed.size);
    s.fromBackend.consume(parsed.size);
    const step = onReply(conn, s, parsed.code, raw);
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

/** The step after one backend reply (its code, its bytes); null: wait for the next reply. */
function onReply(conn: Conn, s: SmtpSession, code: number, raw: Uint8Array): HandshakeStep | null {
  switch (s.backendStep) {
    case "banner":
      if (code !== 220) return fail("upstream_banner", text(raw));
      sendUp(conn, ehlo(s));
      s.backendStep = "ehlo";
      return null;
    case "ehlo": {
      const caps = capabilitiesOf(raw);
      if (caps === null) return fail("upstream_ehlo_refused", text(raw));
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
      if (code !== 220 && code !== 250) return fail("upstream_xclient_refused", text(raw));
      if (--s.xclientReplies > 0) return null;
      sendUp(conn, ehlo(s));
      s.backendStep = "ehlo-again";
      return null;
    case "ehlo-again":
      if (code !== 250) return fail("upstream_ehlo_refused", text(raw));
      return sendMail(conn, s);
    case "mail":
      if (code !== 250) return fail("upstream_mail_refused", text(raw));
      sendUp(conn, s.rcptLine!);
      s.backendStep = "rcpt";
      return null;
    case "rcpt":
      // The backend's answer, accepted or not, is the client's answer to its RCPT.
      if (code >= 200 && code < 300) conn.facts!.rcpt!++;
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

/** A refused reply for the log: its code and lines. */
function text(raw: Uint8Array): string {
  const parsed = parseReply(raw);
  if (parsed.kind !== "reply") return parsed.kind;
  const reply: SmtpReply = parsed.reply;
  return `${reply.code} ${reply.lines.join(" / ")}`.slice(0, 300);
}

/**
 * A backend answers EHLO with the same bytes on every connection, so its capabilities are read
 * once per distinct reply (the profile of a 10 kB-message run put parsing them at ~2% of the
 * proxy's time). Bounded: a backend whose reply varies (a counter in its greeting) only refills it.
 */
const CAPABILITIES = new Map<string, EhloCapabilities | null>();
const CAPABILITIES_KEPT = 64;
const latin1 = new TextDecoder("latin1");

function capabilitiesOf(raw: Uint8Array): EhloCapabilities | null {
  const key = latin1.decode(raw);
  const known = CAPABILITIES.get(key);
  if (known !== undefined) return known;
  const parsed = parseReply(raw);
  const caps = parsed.kind === "reply" ? ehloCapabilities(parsed.reply) : null;
  if (CAPABILITIES.size >= CAPABILITIES_KEPT) CAPABILITIES.clear();
  CAPABILITIES.set(key, caps);
  return caps;
}

function fail(reason: string, detail: string): HandshakeStep {
  return { kind: "fail", reason, detail };
}

function session(conn: Conn): SmtpSession {
  return conn.intake!.state as SmtpSession;
}
