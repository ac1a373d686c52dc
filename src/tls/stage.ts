/**
 * The tls stage. Two entry points:
 *
 * - {@link helloPhase}: the ClientHello is being collected. Once whole: fingerprints, the listener's
 *   TLS protection (requireSni, JA3/JA4 blocklists), then routing (tls listeners) or listener-level
 *   termination (postgres listeners, whose route is only known after the startup message).
 * - {@link tlsStage}: a tls listener's route is chosen. Terminate (the route's certificate, else the
 *   listener's) and dial once the handshake is done, or pass the bytes through.
 *
 * Termination runs Bun's `socket.upgradeTLS({ isServer: true, initialData, tls })` over the accepted
 * socket, with the bytes already read as initialData (verified on Bun 1.4.5; the option is not in
 * its type declarations), or without it when the hello was peeked and is still queued. Terminated
 * connections are marked USERSPACE_ONLY: plaintext that exists only inside the TLS library cannot
 * be handed to splice or sockmap.
 * Every refusal is counted under switchyard_tls_refused_total{reason} and closes with that reason.
 * @module
 */
import type { Socket } from "bun";
import { Conn, HANDSHAKING, NOT_OURS, SNIFFING } from "../proxy/conn.ts";
import type { RouteRuntime } from "../proxy/runtime.ts";
import { abort } from "../proxy/finish.ts";
import { route, dialRoute } from "../proxy/pipeline.ts";
import { SNIFF_HANDLERS } from "../proxy/sniff-stage.ts";
import { sniffClientHello } from "../sniff/tls-hello.ts";
import { fingerprints } from "../sniff/fingerprint.ts";
import type { RouteTls } from "./route-tls.ts";
import { upstreamTls } from "./options.ts";
import { afterPreRouteTls } from "../postgres/stage.ts";
import { UPSTREAM_HANDLERS } from "../relay/userspace.ts";
import { log } from "../log/logger.ts";

/** Feed the collected bytes to the ClientHello parser; act once it is whole. */
export function helloPhase(conn: Conn, full: boolean): void {
  const p = conn.proto!;
  const r = sniffClientHello(p.first.bytes);
  if (r.kind === "need-more") {
    if (full) refuse(conn, "malformed_hello", "hello_too_long");
    return;
  }
  if (r.kind === "no-match") return refuse(conn, "malformed_hello", r.reason);
  const hello = r.facts;
  const fp = fingerprints(hello);
  p.sni = hello.sni;
  p.alpn = hello.alpn;
  p.ja3 = fp.ja3;
  p.ja4 = fp.ja4;
  const protection = conn.listener.config.tlsProtection;
  if (protection.requireSni && hello.sni === null) return refuse(conn, "sni_required");
  if (protection.ja3Blocklist.includes(fp.ja3)) return refuse(conn, "ja3_blocked", fp.ja3);
  if (protection.ja4Blocklist.includes(fp.ja4)) return refuse(conn, "ja4_blocked", fp.ja4);
  conn.flags &= ~SNIFFING;
  conn.client.pause();
  if (conn.listener.preRouteTls) return terminate(conn, conn.listener.preRouteTls);
  route(conn);
}

/** tls: a tls listener's route is chosen; terminate or pass through, then dial. */
export function tlsStage(conn: Conn, chosen: RouteRuntime): void {
  if (chosen.tls) return terminate(conn, chosen.tls);
  passThrough(conn);
  dialRoute(conn, chosen);
}

/**
 * Passthrough. A peeked hello is still in the kernel: the relay reads it with the rest of the
 * stream, and a kernel engine takes the fds with it queued, so nothing is sent on here. A read one
 * goes to the upstream first (pendingUp), then the relay takes over.
 */
export function passThrough(conn: Conn): void {
  const p = conn.proto!;
  p.tls = "passthrough";
  conn.listener.state.metrics.countTls(conn.listener.state.metrics.tlsHandshakes, conn.listener.config.name, "passthrough");
  if (!p.helloInKernel) {
    const bytes = p.first.bytes;
    conn.upQueue().push(bytes);
    conn.bytesIn += bytes.length;
  }
  p.release();
}

function terminate(conn: Conn, settings: RouteTls): void {
  const p = conn.proto!;
  const tls = settings.forName(p.sni);
  if (!tls) return refuse(conn, "no_certificate", p.sni ?? "(no SNI)");
  const raw = conn.client;
  p.raw = raw;
  const upgrade = (raw as unknown as { upgradeTLS(o: object): [Socket<Conn>, Socket<Conn>] }).upgradeTLS;
  // A peeked hello is still queued: once resumed, the raw socket's reads feed the TLS socket, hello
  // first (verified on Bun 1.4.5). A read one is handed over as initialData.
  const initial = p.helloInKernel ? {} : { initialData: p.first.bytes };
  const [, tlsSocket] = upgrade.call(raw, { isServer: true, ...initial, tls, socket: TLS_HANDLERS, data: conn });
  conn.client = tlsSocket;
  conn.markUserspaceOnly();
  p.release();
  raw.resume();
}

/** Handlers of TLS sockets made over accepted ones: the sniffing listener's, plus the handshake. */
const TLS_HANDLERS = {
  ...SNIFF_HANDLERS,
  open() {},
  handshake(s: Socket<Conn>, ok: boolean, authorizationError: Error | null) {
    const conn = s.data;
    if (s !== conn.client || conn.flags & NOT_OURS) return;
    if (!ok) return refuse(conn, "tls_handshake_failed", authorizationError?.message ?? "");
    const mtls = conn.route?.config.mtls ?? conn.listener.config.mtls;
    if (mtls && authorizationError) {
      if (mtls.requireClientCert) return refuse(conn, "client_cert_refused", authorizationError.message);
    } else if (mtls) {
      conn.proto!.clientIdentity = subjectOf(s);
    }
    handshakeDone(conn);
  },
};

function handshakeDone(conn: Conn): void {
  const p = conn.proto!;
  p.tls = "terminate";
  p.negotiatedAlpn = (conn.client as unknown as { alpnProtocol: string | false | null }).alpnProtocol || null;
  conn.listener.state.metrics.countTls(conn.listener.state.metrics.tlsHandshakes, conn.listener.config.name, "terminate");
  if (conn.listener.preRouteTls) return afterPreRouteTls(conn);
  dialRoute(conn, conn.route!);
}

function subjectOf(s: Socket<Conn>): string | null {
  const cert = (s as unknown as { getPeerCertificate(): { subject?: Record<string, string | string[]> } | undefined }).getPeerCertificate();
  const subject = cert?.subject;
  if (!subject || Object.keys(subject).length === 0) return null;
  return Object.entries(subject).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("+") : v}`).join(",");
}

/** Close before routing with a counted reason. */
export function refuse(conn: Conn, reason: string, detail?: string): void {
  const m = conn.listener.state.metrics;
  m.countTls(m.tlsRefused, conn.listener.config.name, reason);
  conn.flags &= ~(SNIFFING | HANDSHAKING);
  abort(conn, reason, detail);
}

/** Bun TLS options for the upstream of a terminated route with upstreamTls, else undefined. */
export function upstreamTlsFor(conn: Conn, host: string): object | undefined {
  const config = conn.route?.config.upstreamTls;
  if (!config || conn.proto?.tls !== "terminate") return undefined;
  // Made once per route and host: the CA file is read when first needed, not per connection.
  let byHost = upstreamSettings.get(config);
  if (!byHost) upstreamSettings.set(config, (byHost = new Map()));
  let settings = byHost.get(host);
  if (!settings) byHost.set(host, (settings = upstreamTls(config, host)));
  return settings;
}

const upstreamSettings = new WeakMap<object, Map<string, object>>();

/** Upstream handlers for re-encrypted routes: a failed handshake or verification is named as such. */
export const UPSTREAM_TLS_HANDLERS = {
  ...UPSTREAM_HANDLERS,
  handshake(s: Socket<Conn>, ok: boolean, authorizationError: Error | null) {
    const conn = s.data;
    if (ok && !authorizationError) return;
    const verify = conn.route?.config.upstreamTls?.verify ?? true;
    if (ok && !verify) return; // verification off: the error is informational
    log.warn("upstream TLS handshake failed", { id: conn.id, upstream: conn.upstreamText, error: authorizationError?.message ?? "handshake failed" });
    conn.because("upstream_tls_failed");
  },
};
