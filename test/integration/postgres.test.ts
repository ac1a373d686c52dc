/**
 * postgres listeners with the real psql and two real PostgreSQL servers (started by the test):
 * SSLRequest answered and TLS terminated (sslmode=require and verify-full), two databases routed to
 * two servers by name, a query cancelled with psql's own CancelRequest, GSSENCRequest refused, and
 * refusals answered with a FATAL ErrorResponse as a server would.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { makePki, type Pki } from "../helpers/certs.ts";
import { eventually, startProxy, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { startCluster, type Cluster } from "../helpers/postgres.ts";
import { freePort } from "../helpers/peers.ts";

let pki: Pki;
let a: Cluster;
let b: Cluster;
let proxy: RunningProxy;

async function psql(conninfo: string, sql: string, ms = 20_000): Promise<{ code: number; out: string }> {
  const p = Bun.spawn(["psql", "-X", "-At", conninfo, "-c", sql], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
  const timer = setTimeout(() => p.kill("SIGKILL"), ms);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, out: (out + err).trim() };
}

beforeAll(async () => {
  pki = makePki();
  const db = pki.issue("db", ["db.test"]);
  a = startCluster(freePort());
  b = startCluster(freePort());
  a.psql("create database orders");
  b.psql("create database billing");
  proxy = await startProxy(["serve", "-c", writeConfig({
    listeners: [{
      name: "pg", listen: "127.0.0.1:0", protocol: "postgres", defaultCert: db,
      routes: [
        { name: "orders", match: { database: "orders" }, upstreams: [`127.0.0.1:${a.port}`] },
        { name: "billing", match: { database: "billing" }, upstreams: [`127.0.0.1:${b.port}`] },
        { name: "gone", match: { database: "gone" }, upstreams: [`127.0.0.1:${freePort()}`] }, // nothing listens there
      ],
    }, {
      name: "pg-plain", listen: "127.0.0.1:0", protocol: "postgres",
      routes: [{ name: "orders", match: { database: "orders" }, upstreams: [`127.0.0.1:${a.port}`] }],
    }],
  })]);
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  a?.stop();
  b?.stop();
});

const base = () => `host=127.0.0.1 port=${proxy.port} user=postgres`;

test("sslmode=require: TLS terminated by the proxy, routed by database to the first server", async () => {
  const r = await psql(`${base()} dbname=orders sslmode=require`, "select current_setting('port')");
  expect(r).toEqual({ code: 0, out: String(a.port) });
  await eventually(() => proxy.accessLog().some((l) => l.database === "orders"), 10_000, "access log");
  expect(proxy.accessLog().find((l) => l.database === "orders")).toMatchObject({ tls: "terminate", route: "orders", user: "postgres" });
});

test("sslmode=verify-full against the test CA and SNI db.test: the second database goes to the second server", async () => {
  const r = await psql(`host=db.test hostaddr=127.0.0.1 port=${proxy.port} user=postgres dbname=billing sslmode=verify-full sslrootcert=${pki.ca}`, "select current_setting('port')");
  expect(r).toEqual({ code: 0, out: String(b.port) });
});

test("sslmode=disable still works (plaintext startup routed the same way)", async () => {
  const r = await psql(`${base()} dbname=billing sslmode=disable`, "select current_database()");
  expect(r).toEqual({ code: 0, out: "billing" });
});

test("a postgres listener without any certificate answers SSLRequest 'N': sslmode=prefer goes on in plain text, require fails", async () => {
  const plain = Number(proxy.addresses[1]!.split(":").pop());
  const prefer = await psql(`host=127.0.0.1 port=${plain} user=postgres dbname=orders sslmode=prefer`, "select current_database()");
  expect(prefer).toEqual({ code: 0, out: "orders" });
  const require = await psql(`host=127.0.0.1 port=${plain} user=postgres dbname=orders sslmode=require`, "select 1");
  expect(require.code).not.toBe(0);
  expect(require.out).toContain("does not support SSL");
});

test("a query cancelled by psql (SIGINT → CancelRequest) reaches the backend that owns the key", async () => {
  const p = Bun.spawn(["psql", "-X", "-At", `${base()} dbname=orders sslmode=require`, "-c", "select pg_sleep(60)"], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), 45_000);
  // Wait until the query runs on the server, then interrupt psql.
  await eventually(() => a.psql("select count(*) from pg_stat_activity where query = 'select pg_sleep(60)' and state = 'active'") === "1", 20_000, "running query");
  p.kill("SIGINT");
  const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  expect(err).toContain("canceling statement due to user request");
  expect(code).not.toBe(0);
  await eventually(() => proxy.accessLog().some((l) => l.reason === "cancel_forwarded"), 10_000, "cancel record");
  // The 16-byte CancelRequest went to the backend: it counts as bytes in, as relayed bytes do.
  expect(proxy.accessLog().find((l) => l.reason === "cancel_forwarded")).toMatchObject({ bytesIn: 16, bytesOut: 0 });
}, 60_000);

/** Run `select pg_sleep(60)` through `port`, interrupt psql once the server runs it; psql's stderr. */
async function cancelledSleep(port: number): Promise<string> {
  const p = Bun.spawn(["psql", "-X", "-At", `host=127.0.0.1 port=${port} user=postgres dbname=orders sslmode=require`, "-c", "select pg_sleep(60)"], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), 45_000);
  await eventually(() => a.psql("select count(*) from pg_stat_activity where query = 'select pg_sleep(60)' and state = 'active'") === "1", 20_000, "running query");
  p.kill("SIGINT");
  const [err] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return err;
}

test("with 2 workers every cancel reaches its backend, also when the CancelRequest lands on the other worker", async () => {
  const workers = await startProxy(["serve", "-c", writeConfig({
    workers: 2,
    listeners: [{ name: "pg", listen: "127.0.0.1:0", protocol: "postgres", defaultCert: pki.issue("db2", ["db.test"]),
      routes: [{ name: "orders", match: { database: "orders" }, upstreams: [`127.0.0.1:${a.port}`] }] }],
  })]);
  try {
    // SO_REUSEPORT spreads connections by their port numbers: over 6 cancels, some land on the worker
    // that does not hold the session (without the supervisor passing them on, 63 runs in 64 fail here).
    for (let i = 0; i < 6; i++) expect(await cancelledSleep(workers.port)).toContain("canceling statement due to user request");
    await eventually(() => workers.accessLog().filter((l) => String(l.reason).startsWith("cancel_")).length === 6, 10_000, "cancel records");
    const reasons = workers.accessLog().map((l) => l.reason).filter((r) => String(r).startsWith("cancel_"));
    expect(reasons).not.toContain("cancel_unknown_key");
  } finally {
    await workers.stop();
  }
}, 120_000);

test("GSSENCRequest is answered 'N'", async () => {
  const answer = await new Promise<number>((resolve, reject) => {
    Bun.connect({ hostname: "127.0.0.1", port: proxy.port, socket: {
      open(s) { s.write(new Uint8Array([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30])); },
      data(s, d) { resolve(d[0]!); s.end(); },
      close() { reject(new Error("closed without an answer")); },
    } });
  });
  expect(String.fromCharCode(answer)).toBe("N");
});

test("PostgreSQL 17 direct TLS: a ClientHello first, ALPN postgresql selected, then the startup message inside TLS", async () => {
  // psql 15 cannot start TLS directly; openssl s_client does the TLS part and then sends a StartupMessage.
  const user = "user\0postgres\0database\0orders\0\0";
  const startup = Buffer.alloc(8 + user.length);
  startup.writeUInt32BE(startup.length, 0);
  startup.writeUInt32BE(196608, 4);
  startup.write(user, 8, "latin1");
  const p = Bun.spawn(["bash", "-c", `{ sleep 0.5; printf '%s' "$1" | base64 -d; sleep 1; } | openssl s_client -connect 127.0.0.1:${proxy.port} -servername db.test -alpn postgresql -CAfile ${pki.ca} -verify_return_error`, "sh", startup.toString("base64")],
    { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  expect(out).toContain("ALPN protocol: postgresql");
  expect(out).toContain("Verify return code: 0 (ok)");
  // The server's answer to the startup (trust: AuthenticationOk, then ParameterStatus…) came back through TLS.
  expect(out).toContain("server_version");
  await eventually(() => proxy.accessLog().some((l) => l.alpn === "postgresql"), 10_000, "direct TLS record");
  expect(proxy.accessLog().find((l) => l.alpn === "postgresql")).toMatchObject({ sni: "db.test", tls: "terminate", route: "orders", database: "orders" });
});

test("no route for the database: psql shows the proxy's FATAL, over TLS (sslmode=require) and in plain text (disable, and after 'N')", async () => {
  const plain = Number(proxy.addresses[1]!.split(":").pop());
  for (const conninfo of [`${base()} dbname=nosuch sslmode=require`, `${base()} dbname=nosuch sslmode=disable`, `host=127.0.0.1 port=${plain} user=postgres dbname=nosuch sslmode=prefer`]) {
    const r = await psql(conninfo, "select 1");
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('FATAL:  no route for database "nosuch" and user "postgres" on this proxy');
  }
  await eventually(() => proxy.accessLog().filter((l) => l.database === "nosuch").length === 3, 10_000, "no_route records");
  expect(proxy.accessLog().filter((l) => l.database === "nosuch").map((l) => [l.reason, l.tls])).toEqual([["no_route", "terminate"], ["no_route", "none"], ["no_route", "none"]]);
});

test("a route whose server refuses: FATAL with the reason", async () => {
  const r = await psql(`${base()} dbname=gone sslmode=require`, "select 1");
  expect(r.code).not.toBe(0);
  expect(r.out).toContain("FATAL:  connection refused by the proxy: upstream_refused");
});

/** Send a plaintext StartupMessage for `database`: the fields of the ErrorResponse the proxy answers before it closes. */
async function startupAnswer(database: string): Promise<Record<string, string>> {
  const params = `user\0postgres\0database\0${database}\0\0`;
  const startup = Buffer.alloc(8 + params.length);
  startup.writeUInt32BE(startup.length, 0);
  startup.writeUInt32BE(196608, 4);
  startup.write(params, 8, "latin1");
  let got = Buffer.alloc(0);
  await new Promise<void>((resolve) => {
    Bun.connect({ hostname: "127.0.0.1", port: proxy.port, socket: {
      open(s) { s.write(startup); },
      data(_s, d) { got = Buffer.concat([got, d]); },
      close() { resolve(); },
    } });
  });
  expect(String.fromCharCode(got[0]!)).toBe("E");
  expect(got.readUInt32BE(1)).toBe(got.length - 1); // one message, then the close
  const fields: Record<string, string> = {};
  for (const f of got.subarray(5, got.length - 1).toString("utf8").split("\0").filter(Boolean)) fields[f[0]!] = f.slice(1);
  return fields;
}

test("the ErrorResponse is a server's: severity FATAL (S and V), SQLSTATE 3D000 for no route, 08004 for other refusals", async () => {
  expect(await startupAnswer("nosuch")).toEqual({ S: "FATAL", V: "FATAL", C: "3D000", M: 'no route for database "nosuch" and user "postgres" on this proxy' });
  expect(await startupAnswer("gone")).toEqual({ S: "FATAL", V: "FATAL", C: "08004", M: "connection refused by the proxy: upstream_refused" });
});
