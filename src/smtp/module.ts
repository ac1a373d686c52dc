/**
 * The `smtp` protocol: the proxy greets, holds the dialogue itself until MAIL FROM and the first
 * RCPT TO say where the mail goes, then brings the chosen backend to the same point and relays,
 * still reading every command and body:
 *
 *   220 banner ─► EHLO/HELO, NOOP, RSET, [STARTTLS ─► TLS ─► EHLO] ─► MAIL ─► RCPT ─► route (ehlo, rcptDomain)
 *     ─► dial ─► banner, EHLO, [XCLIENT, EHLO], MAIL, RCPT (src/smtp/backend-handshake.ts)
 *     ─► relay, inspected (src/smtp/relay-inspect.ts)
 *
 * - greeting: "220 <smtp.hostname> ESMTP" (RFC 5321 §4.3.1).
 * - sniff: src/smtp/dialogue.ts, over the bytes collected so far, which it moves into the
 *   session's reader; STARTTLS ends TLS here with the listener's certificate (by SNI), the hello
 *   read as the tls module reads it.
 * - farewell: a 421 naming the reason, unless the proxy already answered (RFC 5321 §3.8).
 * @module
 */
import type { Conn } from "../proxy/conn.ts";
import type { RouteRuntime } from "../proxy/runtime.ts";
import type { ByteQueue } from "../net/byte-queue.ts";
import { DIAL, TERMINATE_TLS, refuse, type ProtocolModule, type RoutedStep, type SniffStep } from "../protocol/module.ts";
import { readHello } from "../tls/hello.ts";
import { buildBanner } from "./reply-builder.ts";
import { answerCommands } from "./dialogue.ts";
import { backendData, backendStart, clientDuringHandshake } from "./backend-handshake.ts";
import { inspectClient, SMTP_UPSTREAM_HANDLERS } from "./relay-inspect.ts";
import { closing } from "./proxy-replies.ts";
import { SmtpSession } from "./session.ts";
import { watchTimeouts } from "./timeouts.ts";

export const SMTP: ProtocolModule = {
  name: "smtp",
  speaksFirst: "proxy",
  certificates: true,
  tlsBeforeRouting: { alpn: [] },
  upstreamHandshake: { start: backendStart, data: backendData, clientData: clientDuringHandshake },
  upstreamHandlers: SMTP_UPSTREAM_HANDLERS,

  greeting(conn: Conn): Uint8Array {
    return buildBanner(conn.listener.config.smtp!.hostname);
  },

  newState(conn: Conn): object {
    const config = conn.listener.config.smtp!;
    conn.facts!.rcpt = 0; // every smtp record counts its accepted recipients
    watchTimeouts(conn, config);
    return new SmtpSession(config);
  },

  sniff(conn: Conn, collected: ByteQueue, full: boolean): SniffStep {
    const s = conn.intake!.state as SmtpSession;
    if (s.phase === "tls-hello") {
      const step = readHello(conn, collected.bytes(), full);
      if (step !== null) return step;
      s.phase = "dialogue";
      return TERMINATE_TLS; // sniffed again over the plaintext: the client must EHLO anew
    }
    if (!s.reader.push(collected.bytes())) return refuse("smtp_client_unread", "client sent more than the bound without reading replies");
    collected.clear();
    return answerCommands(conn, s);
  },

  routed(conn: Conn, _route: RouteRuntime | null): RoutedStep {
    // Every byte is read until the end (bodies are scanned): no kernel engine may take the pair.
    conn.markUserspaceOnly();
    (conn.intake!.state as SmtpSession).phase = "backend";
    return DIAL;
  },

  relayClientData: inspectClient,

  farewell(conn: Conn, reason: string): Uint8Array | null {
    const s = conn.intake!.state as SmtpSession;
    if (s.answered || s.phase === "tls-hello") return null;
    return closing(s.config.hostname, reason);
  },
};
