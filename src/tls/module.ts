/**
 * The `tls` protocol: route on the ClientHello (SNI, ALPN, JA3/JA4), then end TLS here with the
 * route's certificate (terminateTls) or pass the bytes through untouched.
 *
 * - sniff: the hello (src/tls/hello.ts); whole and allowed → route.
 * - routed: the route terminates → terminate-tls (the pipeline dials once the handshake is done);
 *   otherwise, and for a resolver's answer (no route to say "terminate"), a passthrough.
 * - peeks: the hello can stay in the kernel (src/proxy/hello-peek.ts), so a passthrough relays the
 *   connection from its first byte and a kernel engine can take it with nothing replayed.
 * - farewell: a hello no route serves gets a fatal unrecognized_name alert (src/tls/alert.ts).
 * @module
 */
import type { Conn } from "../proxy/conn.ts";
import type { RouteRuntime } from "../proxy/runtime.ts";
import { DIAL, ROUTE, TERMINATE_TLS, type ProtocolModule, type RoutedStep, type SniffStep } from "../protocol/module.ts";
import type { ByteQueue } from "../net/byte-queue.ts";
import { readHello } from "./hello.ts";
import { UNRECOGNIZED_NAME_ALERT } from "./alert.ts";

export const TLS: ProtocolModule = {
  name: "tls",
  speaksFirst: "client",
  certificates: true,
  peeks: true,

  sniff(conn: Conn, collected: ByteQueue, full: boolean): SniffStep {
    return readHello(conn, collected.bytes(), full) ?? ROUTE;
  },

  routed(conn: Conn, route: RouteRuntime | null): RoutedStep {
    if (route?.tls) return TERMINATE_TLS;
    passThrough(conn);
    return DIAL;
  },

  farewell(conn: Conn, reason: string): Uint8Array | null {
    // tls "none": the hello was read and neither handed to a TLS server nor passed through.
    return reason === "no_route" && conn.facts!.tls === "none" ? UNRECOGNIZED_NAME_ALERT : null;
  },
};

/**
 * Passthrough. A peeked hello is still in the kernel: the relay reads it with the rest of the
 * stream, and a kernel engine takes the fds with it queued, so nothing is sent on here. A read one
 * goes to the upstream first (pendingUp), then the relay takes over.
 */
function passThrough(conn: Conn): void {
  const intake = conn.intake!;
  conn.facts!.tls = "passthrough";
  const metrics = conn.listener.state.metrics;
  metrics.countTls(metrics.tlsHandshakes, conn.listener.config.name, "passthrough");
  if (!intake.helloInKernel) {
    const bytes = intake.first.bytes();
    conn.upQueue().push(bytes);
    conn.bytesIn += bytes.length;
  }
  intake.first.clear();
}
