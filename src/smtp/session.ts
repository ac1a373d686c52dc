/**
 * One SMTP connection's state as the module keeps it (conn.intake.state): where the dialogue is,
 * the client reader (src/smtp/client-reader.ts) that every client byte goes through from accept to
 * close, what the client said that the backend must hear again (EHLO domain, MAIL and RCPT lines),
 * and, once routed, the order of the replies the client is owed.
 * @module
 */
import type { SmtpListenerConfig } from "../config/types.ts";
import { ByteQueue } from "../net/byte-queue.ts";
import { SmtpClientReader } from "./client-reader.ts";

export type SmtpPhase =
  /** Commands answered by the proxy itself, until MAIL and the first RCPT give the route. */
  | "dialogue"
  /** STARTTLS answered: the next bytes are the client's TLS hello. */
  | "tls-hello"
  /** Routed: the backend handshake runs (its replies are read by src/smtp/backend-handshake.ts). */
  | "backend"
  /** Relaying, each client command and body still read (src/smtp/relay-inspect.ts). */
  | "relay";

/**
 * A reply the client is owed, in the order of its commands (RFC 2920 §3: replies in command order).
 * "backend": the backend's reply is passed on; "ehlo": the backend's 250 is replaced by the proxy's
 * own capabilities; "data": the reply to DATA, 354 opens the body; "rcpt": passed on, and a 2xx
 * counts an accepted recipient (the access log's `rcpt`); "local": the proxy's own bytes.
 */
export type OwedReply =
  | { readonly kind: "backend" | "ehlo" | "data" | "rcpt" }
  | { readonly kind: "local"; readonly bytes: Uint8Array };

/** A backend's reply lines are short (RFC 5321 §4.5.3.1.5); an EHLO reply is the longest one, bounded by the reply parser. */
const BACKEND_BUFFER_BYTES = 256 * 1024;

export class SmtpSession {
  phase: SmtpPhase = "dialogue";
  readonly reader: SmtpClientReader;
  /** EHLO (true) or HELO (false) since the last reset of the dialogue; null before either. */
  extended: boolean | null = null;
  /** The client's EHLO/HELO argument as written (the backend hears it again). */
  heloDomain: string | null = null;
  /** MAIL FROM as the client sent it (CRLF included), replayed to the backend. */
  mailLine: Uint8Array | null = null;
  /** The first RCPT TO, replayed; the backend's answer to it is the client's answer. */
  rcptLine: Uint8Array | null = null;
  /** Commands answered before routing (bounded by smtp.maxCommandsBeforeRouting). */
  commands = 0;
  /** The proxy has already told the client why it closes: nothing more to say (farewell). */
  answered = false;
  /** Backend bytes not yet parsed into replies. */
  readonly fromBackend = new ByteQueue(BACKEND_BUFFER_BYTES, "smtp_backend_reply_too_long");
  /** Routed: replies owed to the client, oldest first. */
  readonly owed: OwedReply[] = [];
  /** Routed: DATA was relayed and its reply has not come back; nothing after it is read yet. */
  holding = false;
  /** Backend handshake: which step's reply is awaited, and how many XCLIENT replies are still due. */
  backendStep: "banner" | "ehlo" | "xclient" | "ehlo-again" | "mail" | "rcpt" = "banner";
  xclientReplies = 0;
  /** A handshake command the backend's socket did not take whole (src/smtp/backend-handshake.ts fails on it). */
  shortWrite = false;

  constructor(readonly config: SmtpListenerConfig) {
    this.reader = newReader(config);
  }

  /** After STARTTLS: nothing the client said before TLS counts (RFC 3207 §4.2), bytes included. */
  restartAfterTls(): void {
    this.reader.discardPending();
    this.extended = null;
    this.heloDomain = null;
    this.mailLine = null;
  }
}

/**
 * One socket read: uSockets (under Bun 1.4.5) reads into a 512 KiB buffer, and a read of 326 603
 * bytes was seen on loopback with a 15 MB message; twice that leaves room for a TLS socket's
 * delivery after pause(). Pushing does not copy, so this is a bound, not an allocation.
 */
const MAX_READ_BYTES = 1024 * 1024;

export function newReader(config: SmtpListenerConfig): SmtpClientReader {
  return new SmtpClientReader({ maxMessageBytes: config.maxMessageBytes, maxReadBytes: MAX_READ_BYTES });
}
