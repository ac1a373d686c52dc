/**
 * The `mysql` protocol: the server speaks first, so the proxy greets the client itself, reads the
 * user and database from its HandshakeResponse41 (inside TLS after an SSLRequest), routes on them,
 * and then lets the client authenticate to the chosen server by relaying that server's scramble in
 * an AuthSwitchRequest: no password is stored here (issue 16, DESIGN.md "Protocol facts").
 *
 *   accept ─► greeting (src/mysql/greeting.ts) ─► SSLRequest? ─► TLS (listener certificate)
 *          ─► HandshakeResponse41 (src/mysql/client-intake.ts) ─► route by user, database
 *          ─► dial ─► server greeting ─► AuthSwitchRequest ⇄ … (src/mysql/upstream-auth.ts) ─► OK ─► relay
 *
 * Refusals after the client's response reach it as ERR packets (src/mysql/farewell.ts).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html
 * @module
 */
import type { Conn } from "../proxy/conn.ts";
import type { ByteQueue } from "../net/byte-queue.ts";
import type { ProtocolModule, SniffStep } from "../protocol/module.ts";
import { offersTls, sniffClient } from "./client-intake.ts";
import { mysqlFarewell } from "./farewell.ts";
import { proxyGreeting } from "./greeting.ts";
import { MysqlState } from "./state.ts";
import { MYSQL_UPSTREAM_AUTH } from "./upstream-auth.ts";
import { SCRAMBLE_BYTES } from "./initial-handshake.ts";

export const MYSQL: ProtocolModule = {
  name: "mysql",
  speaksFirst: "proxy",
  certificates: true,
  // MySQL has no ALPN name: clients send none.
  tlsBeforeRouting: { alpn: [] },
  upstreamHandshake: MYSQL_UPSTREAM_AUTH,

  newState: () => new MysqlState(),

  greeting(conn: Conn): Uint8Array {
    // The scramble only has to be unpredictable enough that the client's answer to it (which is
    // thrown away) reveals nothing reusable: the real server's scramble is what it answers later.
    return proxyGreeting(conn.id, crypto.getRandomValues(new Uint8Array(SCRAMBLE_BYTES)), offersTls(conn));
  },

  sniff(conn: Conn, collected: ByteQueue, full: boolean): SniffStep {
    return sniffClient(conn, conn.intake!.state as MysqlState, collected, full);
  },

  farewell: mysqlFarewell,
};
