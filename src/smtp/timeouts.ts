/**
 * The SMTP server's timeouts (RFC 5321 §4.5.3.2), per connection, from accept to close:
 * - command (`smtp.commandTimeoutMs`, default 5 minutes, §4.5.3.2.7): the client is silent while
 *   the proxy waits for its next command: before routing, or after it with no reply owed;
 * - data block (`smtp.dataTimeoutMs`, default 3 minutes, §4.5.3.2.5's bound on each block of
 *   message data): the client is silent inside a message body.
 * Either ends the session with `421 4.4.2 <host> Error: timeout exceeded (<reason>)` (RFC 3463
 * X.4.2, as Postfix answers) and the reason in the access log; mid-DATA the backend's connection is
 * closed with it, so the backend discards the message. While the proxy waits for the backend (a
 * reply owed, the backend handshake), the client is not timed: idleTimeoutMs and connectTimeoutMs
 * bound the backend. During a STARTTLS handshake handshakeTimeoutMs does.
 *
 * Like src/proxy/timeout-sweeper.ts, no timer per connection or per read: reads stamp
 * conn.lastActive, and one interval looks at every smtp connection.
 * @module
 */
import type { SmtpListenerConfig } from "../config/types.ts";
import { FINISHED, type Conn } from "../proxy/conn.ts";
import { abort } from "../proxy/finish.ts";
import { timedOut } from "./proxy-replies.ts";
import type { SmtpSession } from "./session.ts";

export type SmtpTimeoutReason = "command_timeout" | "data_timeout";

/** Which timeout, if any, a session silent for `silentMs` has passed. Pure. */
export function timeoutDue(s: SmtpSession, silentMs: number): SmtpTimeoutReason | null {
  switch (s.phase) {
    case "dialogue":
      return silentMs > s.config.commandTimeoutMs ? "command_timeout" : null;
    case "relay":
      if (s.reader.inData) return silentMs > s.config.dataTimeoutMs ? "data_timeout" : null;
      if (s.holding || s.owed.length > 0) return null; // the backend owes a reply: the client waits too
      return silentMs > s.config.commandTimeoutMs ? "command_timeout" : null;
    case "tls-hello":
    case "backend":
      return null;
  }
}

const watched = new Set<Conn>();
let timer: ReturnType<typeof setInterval> | null = null;
let periodMs = Infinity;

/**
 * Time `conn` (an smtp connection, its session in conn.intake.state) until it finishes. The sweep
 * period is a quarter of the shortest timeout watched, between 50 ms and 1 s.
 */
export function watchTimeouts(conn: Conn, config: SmtpListenerConfig): void {
  watched.add(conn);
  const want = Math.min(1000, Math.max(50, Math.floor(Math.min(config.commandTimeoutMs, config.dataTimeoutMs) / 4)));
  if (timer !== null && want >= periodMs) return;
  if (timer !== null) clearInterval(timer);
  periodMs = want;
  timer = setInterval(sweep, want);
  timer.unref();
}

function sweep(): void {
  const now = performance.now();
  for (const conn of watched) {
    if (conn.flags & FINISHED) {
      watched.delete(conn);
      continue;
    }
    const s = conn.intake!.state as SmtpSession;
    const due = timeoutDue(s, now - conn.lastActive);
    if (due !== null) timeOut(conn, s, due);
  }
  if (watched.size === 0 && timer !== null) {
    clearInterval(timer);
    timer = null;
    periodMs = Infinity;
  }
}

function timeOut(conn: Conn, s: SmtpSession, reason: SmtpTimeoutReason): void {
  const reply = timedOut(s.config.hostname, reason);
  conn.bytesOut += reply.length;
  conn.client.write(reply);
  s.answered = true; // no second 421 from the farewell
  abort(conn, reason);
}
