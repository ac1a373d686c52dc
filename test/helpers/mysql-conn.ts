/**
 * A stand-in connection for the mysql module's stages (src/mysql/client-intake.ts,
 * src/mysql/upstream-auth.ts, src/mysql/farewell.ts): facts, the module's state, a listener with or
 * without a certificate, and two sides that record what would be written to them. Used by
 * test/unit/mysql-module.test.ts and bench/fuzz/mysql-session.ts.
 */
import type { Conn } from "../../src/proxy/conn.ts";
import { ByteQueue } from "../../src/net/byte-queue.ts";
import { ConnFacts } from "../../src/protocol/facts.ts";
import { MysqlState } from "../../src/mysql/state.ts";

export interface FakeMysqlConn {
  conn: Conn;
  state: MysqlState;
  toClient: Uint8Array[];
  toServer: Uint8Array[];
  down: ByteQueue;
}

export function fakeMysqlConn(withCert = true): FakeMysqlConn {
  const state = new MysqlState();
  const toClient: Uint8Array[] = [];
  const toServer: Uint8Array[] = [];
  const down = new ByteQueue(1 << 20, "test");
  const conn = {
    facts: new ConnFacts(), intake: { state }, bytesIn: 0, bytesOut: 0, upstreamText: "127.0.0.1:3306",
    listener: { certs: { forName: () => (withCert ? {} : null) }, config: { tlsProtection: { requireSni: false, ja3Blocklist: [], ja4Blocklist: [] } } },
    client: { write: (b: Uint8Array) => void toClient.push(b.slice()) },
    upstream: { write: (b: Uint8Array) => void toServer.push(b.slice()) },
    downQueue: () => down,
  } as unknown as Conn;
  return { conn, state, toClient, toServer, down };
}
