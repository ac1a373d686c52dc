/**
 * Ending TLS in the proxy, for the pipeline (src/proxy/pipeline.ts), which calls {@link beginTermination}
 * when a module or a route asks for it and {@link handshakeOutcome} from the TLS socket's handshake
 * handler.
 *
 * Termination runs Bun's `socket.upgradeTLS({ isServer: true, initialData, tls })` over the accepted
 * socket, with the bytes already read as initialData (verified on Bun 1.4.5; the option is not in
 * its type declarations), or without it when the hello was peeked and is still queued. Terminated
 * connections are marked USERSPACE_ONLY: plaintext that exists only inside the TLS library cannot
 * be handed to splice or sockmap.
 * @module
 */
import type { Socket, SocketHandler } from "bun";
import type { Conn } from "../proxy/conn.ts";
import { refuse, type SniffStep } from "../protocol/module.ts";
import type { RouteTls } from "./route-tls.ts";

/** TLS socket handlers: the sniffing listener's, plus the handshake. */
export type TlsServerHandlers = Omit<SocketHandler<Conn>, "open"> & {
  open?(s: Socket<Conn>): void;
  handshake(s: Socket<Conn>, ok: boolean, authorizationError: Error | null): void;
};

/**
 * Start the TLS server handshake over `conn`'s accepted socket with `settings` (by SNI). From here
 * `conn.client` is the TLS socket and the accepted one is `conn.intake.raw`. A refusal when no
 * certificate serves the name; null when the handshake is under way.
 */
export function beginTermination(conn: Conn, settings: RouteTls, handlers: TlsServerHandlers): SniffStep | null {
  const intake = conn.intake!;
  const facts = conn.facts!;
  const tls = settings.forName(facts.sni);
  if (!tls) return refuse("no_certificate", facts.sni ?? "(no SNI)");
  const raw = conn.client;
  intake.raw = raw;
  const upgrade = (raw as unknown as { upgradeTLS(o: object): [Socket<Conn>, Socket<Conn>] }).upgradeTLS;
  // A peeked hello is still queued: once resumed, the raw socket's reads feed the TLS socket, hello
  // first (verified on Bun 1.4.5). A read one is handed over as initialData.
  const initial = intake.helloInKernel ? {} : { initialData: intake.first.bytes() };
  const [, tlsSocket] = upgrade.call(raw, { isServer: true, ...initial, tls, socket: handlers, data: conn });
  conn.client = tlsSocket;
  conn.markUserspaceOnly();
  intake.first.clear();
  raw.resume();
  return null;
}

/** The handshake ended: a refusal, or null with the session's facts recorded (mode, ALPN, client certificate). */
export function handshakeOutcome(conn: Conn, s: Socket<Conn>, ok: boolean, authorizationError: Error | null): SniffStep | null {
  if (!ok) return refuse("tls_handshake_failed", authorizationError?.message ?? "");
  const mtls = conn.route?.config.mtls ?? conn.listener.config.mtls;
  const facts = conn.facts!;
  if (mtls && authorizationError) {
    if (mtls.requireClientCert) return refuse("client_cert_refused", authorizationError.message);
  } else if (mtls) {
    facts.clientCert = subjectOf(s);
  }
  facts.tls = "terminate";
  facts.alpnNegotiated = (conn.client as unknown as { alpnProtocol: string | false | null }).alpnProtocol || null;
  const metrics = conn.listener.state.metrics;
  metrics.countTls(metrics.tlsHandshakes, conn.listener.config.name, "terminate");
  return null;
}

function subjectOf(s: Socket<Conn>): string | null {
  const cert = (s as unknown as { getPeerCertificate(): { subject?: Record<string, string | string[]> } | undefined }).getPeerCertificate();
  const subject = cert?.subject;
  if (!subject || Object.keys(subject).length === 0) return null;
  return Object.entries(subject).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("+") : v}`).join(",");
}
