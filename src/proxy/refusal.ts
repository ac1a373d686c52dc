/**
 * A refusal before routing (a module's refuse step, a failed TLS handshake, the handshake timeout):
 * counted per listener, protocol and reason (switchyard_refused_total), and closed with that reason.
 * @module
 */
import { Conn, HANDSHAKING, SNIFFING } from "./conn.ts";
import { abort } from "./finish.ts";

export function refuseConnection(conn: Conn, reason: string, detail?: string): void {
  const listener = conn.listener;
  listener.state.metrics.countRefused(listener.config.name, listener.config.protocol, reason);
  conn.flags &= ~(SNIFFING | HANDSHAKING);
  abort(conn, reason, detail);
}
