/**
 * The PostgreSQL startup stage of a postgres listener, fed by the sniff stage:
 *
 *   SSLRequest ─► 'S' ─► TLS (listener certificate, by SNI) ─► StartupMessage ─► route ─► dial
 *   GSSENCRequest ─► 'N' ─► (the client goes on with SSLRequest or StartupMessage)
 *   TLS record first (PostgreSQL 17 direct TLS, ALPN "postgresql") ─► TLS ─► StartupMessage …
 *   CancelRequest ─► the backend that issued the key (src/postgres/cancel.ts)
 *
 * The StartupMessage (and anything the client sent after it) is sent to the chosen backend first,
 * then the relay takes over. Routing uses `database` and `user` (src/route/table.ts).
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL
 * @module
 */
import { Conn, SNIFFING } from "../proxy/conn.ts";
import { route } from "../proxy/pipeline.ts";
import { sniffPostgres } from "../sniff/postgres.ts";
import { helloPhase, refuse } from "../tls/stage.ts";
import { forwardCancel } from "./cancel.ts";

/** The one-byte answers to SSLRequest and GSSENCRequest. */
const SSL_YES = new Uint8Array([0x53]); // 'S'
const SSL_NO = new Uint8Array([0x4e]); // 'N'
const GSSENC_NO = new Uint8Array([0x4e]); // 'N'

export function pgStartupPhase(conn: Conn, full: boolean): void {
  const p = conn.proto!;
  const bytes = p.first.bytes;
  const r = sniffPostgres(bytes);
  if (r.kind === "need-more") {
    if (full) refuse(conn, "malformed_startup", "startup message too long");
    return;
  }
  if (r.kind === "no-match") {
    if (r.reason === "tls" && p.tls === "none") {
      p.phase = "tls-hello"; // direct TLS: the hello is already in the collected bytes
      return helloPhase(conn, full);
    }
    return refuse(conn, "malformed_startup", r.reason);
  }
  const m = r.facts;
  // Bytes pipelined after an SSLRequest would be read as if they came over TLS (CVE-2021-23214).
  if ((m.kind === "ssl-request" || m.kind === "gssenc-request") && bytes.length > m.length) {
    return refuse(conn, "malformed_startup", `bytes after ${m.kind}`);
  }
  switch (m.kind) {
    case "ssl-request":
      if (p.tls !== "none") return refuse(conn, "malformed_startup", "SSLRequest inside TLS");
      // Without any certificate, say 'N' as a server without SSL does: sslmode=prefer goes on in plain text.
      if (!conn.listener.certs!.forName(null)) {
        conn.client.write(SSL_NO);
        return p.restart("pg-startup");
      }
      conn.client.write(SSL_YES);
      return p.restart("tls-hello");
    case "gssenc-request":
      conn.client.write(GSSENC_NO);
      return p.restart("pg-startup");
    case "cancel":
      conn.flags &= ~SNIFFING;
      return forwardCancel(conn, m.pid, m.key, bytes.subarray(0, m.length));
    case "startup":
      p.database = m.database;
      p.user = m.user;
      conn.flags &= ~SNIFFING;
      conn.client.pause();
      conn.upQueue().push(bytes); // the startup message goes to the backend first
      conn.bytesIn += bytes.length;
      p.release();
      return route(conn);
  }
}

/** TLS is up on a postgres listener (after 'S' or direct): the StartupMessage comes next, encrypted. */
export function afterPreRouteTls(conn: Conn): void {
  conn.proto!.restart("pg-startup");
  conn.flags |= SNIFFING;
  conn.client.resume();
}
