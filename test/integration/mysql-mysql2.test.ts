/**
 * A Node driver through a mysql listener: mysql2 (npm, devDependency pinned at 3.24.5), run in the
 * test process, against two MariaDB servers started by the test (databases alpha and beta; the
 * first offers SSL). mysql2 connects with mysql_native_password and follows the proxy's
 * AuthSwitchRequest to the real server's scramble; with `ssl` it sends an SSLRequest and upgrades its
 * socket. Checked: each database reaches its server, with and without TLS; a wrong password gets the
 * server's own ERR; a user with no route gets switchyard's; prepared statements (the binary
 * protocol: COM_STMT_PREPARE / EXECUTE / CLOSE) work after the relayed authentication; a route
 * with upstreamTls reaches its server over TLS.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import mysql from "mysql2/promise";
import { makePki, type Pki } from "../helpers/certs.ts";
import { eventually, startProxy, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { mariadbAvailable, startMariaDb, type MariaDb } from "../helpers/mariadb.ts";
import { freePort } from "../helpers/peers.ts";

let pki: Pki;
let a: MariaDb;
let b: MariaDb;
let proxy: RunningProxy;
let port: number;

/** mysql2's TLS options: the proxy's certificate chain is checked against the test CA (its name, db.test, is not the address dialled). */
function sslOptions() {
  return { ca: readFileSync(pki.ca, "utf8"), rejectUnauthorized: true, checkServerIdentity: () => undefined };
}

function connect(user: string, password: string, database: string, tls: boolean) {
  return mysql.createConnection({ host: "127.0.0.1", port, user, password, database, ...(tls ? { ssl: sslOptions() } : {}) });
}

/** The error a failed connect ends with: [errno, sqlState, message]. */
async function connectError(user: string, password: string, database: string, tls: boolean): Promise<[number, string, string]> {
  try {
    const c = await connect(user, password, database, tls);
    await c.end();
  } catch (e) {
    const err = e as { errno: number; sqlState: string; sqlMessage: string };
    return [err.errno, err.sqlState, err.sqlMessage];
  }
  throw new Error("connected");
}

describe.skipIf(!mariadbAvailable())("mysql listener with the mysql2 driver", () => {
  beforeAll(async () => {
    pki = makePki();
    [a, b] = await Promise.all([startMariaDb(freePort(), { ...pki.issue("dba", ["dba.test"]), ca: pki.ca }), startMariaDb(freePort())]);
    for (const [server, name] of [[a, "alpha"], [b, "beta"]] as const) {
      server.sql(`create database ${name}; create user app@'%' identified by 'secret'; grant all on *.* to app@'%';
        create user nobody@'%' identified by 'secret';
        create table ${name}.t (id int primary key, v varchar(100), d double, b blob);`);
    }
    a.sql("create user secure@'%' identified by 'tight' require ssl; grant all on alpha.* to secure@'%';");
    port = freePort();
    proxy = await startProxy(["serve", "-c", writeConfig({
      listeners: [{
        name: "db", listen: `127.0.0.1:${port}`, protocol: "mysql", defaultCert: pki.issue("db", ["db.test"]),
        routes: [
          { name: "alpha", match: { database: "alpha", user: "app" }, upstreams: [`127.0.0.1:${a.port}`] },
          { name: "beta", match: { database: "beta", user: "app" }, upstreams: [`127.0.0.1:${b.port}`] },
          { name: "alpha-tls", match: { database: "alpha", user: "secure" }, upstreams: [`127.0.0.1:${a.port}`], upstreamTls: { serverName: "dba.test", ca: pki.ca } },
        ],
      }],
    })]);
  }, 120_000);

  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  for (const tls of [false, true]) {
    const how = tls ? "with ssl (TLS ended by the proxy)" : "in plain text";

    test(`${how}: alpha reaches the first server, beta the second`, async () => {
      for (const [database, server] of [["alpha", a], ["beta", b]] as const) {
        const c = await connect("app", "secret", database, tls);
        try {
          const [rows] = await c.query("select database() as db, @@port as port");
          expect(rows as unknown).toEqual([{ db: database, port: server.port }]);
          const [cipher] = await c.query("show session status like 'Ssl_cipher'");
          // The client's leg is as it asked; the route has no upstreamTls, so the server sees plaintext.
          expect(cipher as unknown).toEqual([{ Variable_name: "Ssl_cipher", Value: "" }]);
        } finally {
          await c.end();
        }
      }
      // The proxy saw the client's TLS (or none) as the driver was told.
      const logged = (l: Record<string, unknown>) => l.route === "beta" && l.tls === (tls ? "terminate" : "none");
      await eventually(() => proxy.accessLog().some(logged), 10_000, "access log");
    });

    test(`${how}: a wrong password gets the server's own ERR`, async () => {
      expect(await connectError("app", "wrong", "beta", tls)).toEqual([1045, "28000", "Access denied for user 'app'@'127.0.0.1' (using password: YES)"]);
    });

    test(`${how}: a user with no route gets switchyard's ERR naming the reason`, async () => {
      expect(await connectError("nobody", "secret", "alpha", tls)).toEqual([1049, "42000", 'switchyard: no route for user "nobody" and database "alpha"']);
    });

    test(`${how}: prepared statements (binary protocol) insert and read back every type`, async () => {
      const c = await connect("app", "secret", "beta", tls);
      try {
        const id = tls ? 2000 : 1000;
        const blob = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) & 0xff));
        for (let i = 0; i < 20; i++) {
          await c.execute("insert into t (id, v, d, b) values (?, ?, ?, ?)", [id + i, `row ${i} é`, i / 4, blob]);
        }
        const [rows] = await c.execute("select id, v, d, b from t where id >= ? and id < ? order by id", [id, id + 20]);
        const got = rows as { id: number; v: string; d: number; b: Buffer }[];
        expect(got.map((r) => [r.id, r.v, r.d])).toEqual(Array.from({ length: 20 }, (_, i) => [id + i, `row ${i} é`, i / 4]));
        expect(got.every((r) => Buffer.compare(r.b, blob) === 0)).toBe(true);
        // One statement prepared once, executed many times, then closed (COM_STMT_CLOSE).
        const stmt = await c.prepare("select count(*) as n, sum(d) as s from t where id between ? and ?");
        const [first] = await stmt.execute([id, id + 9]);
        const [second] = await stmt.execute([id + 10, id + 19]);
        expect([first, second] as unknown).toEqual([[{ n: 10, s: 11.25 }], [{ n: 10, s: 36.25 }]]);
        await stmt.close();
      } finally {
        await c.end();
      }
    });

    test(`${how}, route with upstreamTls: the server sees TLS (Ssl_cipher) for its REQUIRE SSL user`, async () => {
      const c = await connect("secure", "tight", "alpha", tls);
      try {
        const [rows] = await c.query("show session status like 'Ssl_cipher'");
        expect((rows as { Value: string }[])[0]!.Value).toMatch(/^[A-Z0-9_-]+$/);
        const [stmt] = await c.execute("select ? as x", ["over TLS twice"]);
        expect(stmt as unknown).toEqual([{ x: "over TLS twice" }]);
      } finally {
        await c.end();
      }
    });
  }
});
