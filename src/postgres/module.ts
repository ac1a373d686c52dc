/**
 * The `postgres` protocol: route on the StartupMessage (database, user), with TLS ended here before
 * the route is known (the names are inside TLS):
 *
 *   SSLRequest ─► 'S' ─► TLS (listener certificate, by SNI) ─► StartupMessage ─► route ─► dial
 *   GSSENCRequest ─► 'N' ─► (the client goes on with SSLRequest or StartupMessage)
 *   TLS record first (PostgreSQL 17 direct TLS, ALPN "postgresql") ─► TLS ─► StartupMessage …
 *   CancelRequest ─► the backend that issued the key (src/postgres/cancel.ts)
 *
 * The StartupMessage (and anything the client sent after it) is sent to the chosen backend first,
 * then the relay takes over; its upstream handlers read the backend's startup replies for the
 * cancel key. A client refused after its StartupMessage gets a FATAL ErrorResponse.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL
 * @module
 */
import type { Conn } from "../proxy/conn.ts";
import { HANDLED, NEED_MORE, ROUTE, TERMINATE_TLS, refuse, type ProtocolModule, type SniffStep } from "../protocol/module.ts";
import type { ByteQueue } from "../net/byte-queue.ts";
import { sniffPostgres } from "../sniff/postgres.ts";
import { readHello } from "../tls/hello.ts";
import { forwardCancel, PG_UPSTREAM_HANDLERS } from "./cancel.ts";
import { fatalError, SQLSTATE_INVALID_CATALOG_NAME, SQLSTATE_REJECTED_CONNECTION } from "./error-response.ts";
import { PgState } from "./state.ts";

/** ALPN a postgres listener selects: PostgreSQL 17's direct TLS requires it (and libpq 17 sends it always). */
export const POSTGRES_ALPN = "postgresql";

/** The one-byte answers to SSLRequest and GSSENCRequest. */
const SSL_YES = new Uint8Array([0x53]); // 'S'
const SSL_NO = new Uint8Array([0x4e]); // 'N'
const GSSENC_NO = new Uint8Array([0x4e]); // 'N'

export const POSTGRES: ProtocolModule = {
  name: "postgres",
  speaksFirst: "client",
  certificates: true,
  tlsBeforeRouting: { alpn: [POSTGRES_ALPN] },
  upstreamHandlers: PG_UPSTREAM_HANDLERS,

  newState: () => new PgState(),

  sniff(conn: Conn, collected: ByteQueue, full: boolean): SniffStep {
    const state = conn.intake!.state as PgState;
    if (state.phase === "tls-hello") return readHello(conn, collected.bytes(), full) ?? startTls(state);
    return startupMessage(conn, state, collected, full);
  },

  farewell(conn: Conn, reason: string): Uint8Array | null {
    const facts = conn.facts!;
    if (facts.database === null) return null; // before the StartupMessage a server says nothing either
    if (reason === "no_route") return fatalError(SQLSTATE_INVALID_CATALOG_NAME, `no route for database "${facts.database}" and user "${facts.user}" on this proxy`);
    return fatalError(SQLSTATE_REJECTED_CONNECTION, `connection refused by the proxy: ${reason}`);
  },
};

/** The hello is whole: end TLS; the StartupMessage comes next, encrypted. */
function startTls(state: PgState): SniffStep {
  state.phase = "startup";
  return TERMINATE_TLS;
}

function startupMessage(conn: Conn, state: PgState, collected: ByteQueue, full: boolean): SniffStep {
  const bytes = collected.bytes();
  const r = sniffPostgres(bytes);
  if (r.kind === "need-more") return full ? refuse("malformed_startup", "startup message too long") : NEED_MORE;
  const facts = conn.facts!;
  if (r.kind === "no-match") {
    if (r.reason === "tls" && facts.tls === "none") {
      state.phase = "tls-hello"; // direct TLS: the hello is already in the collected bytes
      return readHello(conn, bytes, full) ?? startTls(state);
    }
    return refuse("malformed_startup", r.reason);
  }
  const m = r.facts;
  // Bytes pipelined after an SSLRequest would be read as if they came over TLS (CVE-2021-23214).
  if ((m.kind === "ssl-request" || m.kind === "gssenc-request") && bytes.length > m.length) {
    return refuse("malformed_startup", `bytes after ${m.kind}`);
  }
  switch (m.kind) {
    case "ssl-request":
      if (facts.tls !== "none") return refuse("malformed_startup", "SSLRequest inside TLS");
      collected.clear();
      // Without any certificate, say 'N' as a server without SSL does: sslmode=prefer goes on in plain text.
      if (!conn.listener.certs!.forName(null)) {
        conn.client.write(SSL_NO);
        return NEED_MORE;
      }
      conn.client.write(SSL_YES);
      state.phase = "tls-hello";
      return NEED_MORE;
    case "gssenc-request":
      collected.clear();
      conn.client.write(GSSENC_NO);
      return NEED_MORE;
    case "cancel":
      forwardCancel(conn, m.pid, m.key, bytes.subarray(0, m.length));
      return HANDLED;
    case "startup":
      facts.database = m.database;
      facts.user = m.user;
      conn.upQueue().push(bytes); // the startup message goes to the backend first
      conn.bytesIn += bytes.length;
      return ROUTE;
  }
}
