/**
 * caching_sha2_password (MySQL 8's default) through a mysql listener, against the fake server of
 * test/helpers/fake-mysql8.ts (MariaDB has no such plugin): the proxy relays the server's scramble
 * in its AuthSwitchRequest and then the plugin's own exchange, fast path and full path (the RSA
 * public key asked for and used by a client in plain text), with sequence ids rewritten; and with
 * upstream TLS (route upstreamTls) to a fake server that offers it, where the full path's password
 * in clear is accepted because the proxy's connection to the server is TLS too.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { makePki, type Pki } from "../helpers/certs.ts";
import { startProxy, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { fakeMysql8, type FakeMysql8 } from "../helpers/fake-mysql8.ts";
import { freePort } from "../helpers/peers.ts";

let pki: Pki;
let server: FakeMysql8;
/** The same users, with TLS (a certificate for db8.test from the test CA). */
let tlsServer: FakeMysql8;
let proxy: RunningProxy;
let port: number;

const ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp" };

async function run(cmd: string[], ms = 30_000): Promise<{ code: number; out: string }> {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", env: ENV });
  const timer = setTimeout(() => p.kill("SIGKILL"), ms);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, out: (out + err).trim() };
}

/** PyMySQL connects, pings and says "ok", or prints the error's code and message. */
function pymysql(user: string, password: string, tls: boolean, database = "eight") {
  const tlsArgs = tls
    ? `ssl={"ca": ${JSON.stringify(pki.ca)}, "check_hostname": False}`
    : `**({"ssl_disabled": True} if "ssl_disabled" in __import__("inspect").signature(pymysql.connections.Connection.__init__).parameters else {})`;
  return run(["/usr/bin/python3", "-c", `
import pymysql
try:
    c = pymysql.connect(host="127.0.0.1", port=${port}, user=${JSON.stringify(user)}, password=${JSON.stringify(password)}, database=${JSON.stringify(database)}, ${tlsArgs})
    c.ping(reconnect=False)
    print("ok")
except pymysql.err.MySQLError as e:
    print("ERR", e.args[0], e.args[1])
`]);
}

const available = Bun.spawnSync(["/usr/bin/python3", "-c", "import pymysql, cryptography"]).exitCode === 0;

describe.skipIf(!available)("caching_sha2_password relayed to a MySQL 8-like server", () => {
  beforeAll(async () => {
    pki = makePki();
    const users = { alice: "wonderland", bob: "builder", carol: "singer", dave: "diver" };
    server = fakeMysql8(users);
    tlsServer = fakeMysql8(users, pki.issue("db8", ["db8.test"]));
    port = freePort();
    proxy = await startProxy(["serve", "-c", writeConfig({
      listeners: [{
        name: "eight", listen: `127.0.0.1:${port}`, protocol: "mysql", defaultCert: pki.issue("db", ["db.test"]),
        routes: [
          { name: "eight", match: { database: "eight" }, upstreams: [`127.0.0.1:${server.port}`] },
          { name: "eight-tls", match: { database: "eight_tls" }, upstreams: [`127.0.0.1:${tlsServer.port}`], upstreamTls: { serverName: "db8.test", ca: pki.ca } },
          // The certificate names db8.test: verification fails for another name.
          { name: "eight-wrong-name", match: { database: "eight_wrong_name" }, upstreams: [`127.0.0.1:${tlsServer.port}`], upstreamTls: { serverName: "other.test", ca: pki.ca } },
          // The same name, verification off: the connection goes on (and is still encrypted).
          { name: "eight-unverified", match: { database: "eight_unverified" }, upstreams: [`127.0.0.1:${tlsServer.port}`], upstreamTls: { serverName: "other.test", verify: false } },
          // A server that offers no TLS, on a route that asks for it: refused, never plaintext instead.
          { name: "eight-no-tls", match: { database: "eight_no_tls" }, upstreams: [`127.0.0.1:${server.port}`], upstreamTls: {} },
        ],
      }],
    })]);
  }, 60_000);

  afterAll(async () => {
    await proxy?.stop();
    server?.stop();
    tlsServer?.stop();
  });

  test("full path in plain text: the client asks for the server's RSA key through the proxy and authenticates", async () => {
    expect(await pymysql("alice", "wonderland", false)).toEqual({ code: 0, out: "ok" });
    expect(server.paths).toEqual(["rsa"]);
  });

  test("fast path: the second login is answered from the server's cache (AuthMoreData 0x03, then OK)", async () => {
    expect(await pymysql("alice", "wonderland", false)).toEqual({ code: 0, out: "ok" });
    expect(server.paths.at(-1)).toBe("fast");
  });

  test("fast path over TLS to the proxy", async () => {
    expect(await pymysql("alice", "wonderland", true)).toEqual({ code: 0, out: "ok" });
    expect(server.paths.at(-1)).toBe("fast");
  });

  test("the mariadb CLI (libmariadb's caching_sha2_password plugin) on the fast path runs a query", async () => {
    const r = await run(["mariadb", "--no-defaults", "-h", "127.0.0.1", "-P", String(port), "-ualice", "-pwonderland", "--skip-ssl", "-N", "-B", "eight", "-e", "select 1"]);
    expect(r).toEqual({ code: 0, out: "1" });
    expect(server.paths.at(-1)).toBe("fast");
  });

  test("a wrong password: the server's ERR reaches the client", async () => {
    expect(await pymysql("bob", "nope", false)).toEqual({ code: 0, out: "ERR 1045 Access denied for user 'bob' (bad-password)" });
  });

  test("full path with a TLS client on a route without upstreamTls: its password in clear meets a plaintext upstream, which refuses it", async () => {
    expect(await pymysql("carol", "singer", true)).toEqual({ code: 0, out: "ERR 1045 Access denied for user 'carol' (cleartext-refused)" });
  });

  test("upstreamTls: full path with a TLS client, the password in clear reaches the server over TLS and is accepted; then the fast path", async () => {
    const before = tlsServer.overTls.length;
    expect(await pymysql("carol", "singer", true, "eight_tls")).toEqual({ code: 0, out: "ok" });
    expect(tlsServer.paths.at(-1)).toBe("cleartext");
    expect(await pymysql("carol", "singer", true, "eight_tls")).toEqual({ code: 0, out: "ok" });
    expect(tlsServer.paths.at(-1)).toBe("fast");
    expect(tlsServer.overTls.slice(before)).toEqual([true, true]);
  });

  test("upstreamTls with a client in plain text: the proxy→server leg is TLS anyway (full path by RSA key, the client cannot know)", async () => {
    const before = tlsServer.overTls.length;
    expect(await pymysql("dave", "diver", false, "eight_tls")).toEqual({ code: 0, out: "ok" });
    expect(tlsServer.paths.at(-1)).toBe("rsa");
    expect(await run(["mariadb", "--no-defaults", "-h", "127.0.0.1", "-P", String(port), "-udave", "-pdiver", "--skip-ssl", "-N", "-B", "eight_tls", "-e", "select 1"]))
      .toEqual({ code: 0, out: "1" });
    expect(tlsServer.overTls.slice(before)).toEqual([true, true]);
  });

  test("upstreamTls: a server certificate that does not name serverName ends the connection with an ERR naming the reason", async () => {
    const r = await pymysql("alice", "wonderland", false, "eight_wrong_name");
    expect(r.out).toMatch(/^ERR 1105 switchyard: server 127\.0\.0\.1:\d+ for user "alice" and database "eight_wrong_name" cannot be reached over TLS as its route requires: its TLS handshake failed \(upstream_tls_failed\)$/);
  });

  test("upstreamTls with verify false: the same certificate is accepted", async () => {
    const before = tlsServer.overTls.length;
    expect(await pymysql("alice", "wonderland", true, "eight_unverified")).toEqual({ code: 0, out: "ok" });
    expect(tlsServer.overTls.slice(before)).toEqual([true]);
  });

  test("upstreamTls to a server whose greeting has no CLIENT_SSL: an ERR, never a plaintext login", async () => {
    const before = server.overTls.length;
    const r = await pymysql("alice", "wonderland", true, "eight_no_tls");
    expect(r.out).toMatch(/^ERR 1105 switchyard: server 127\.0\.0\.1:\d+ for user "alice" and database "eight_no_tls" cannot be reached over TLS as its route requires: it does not offer TLS \(upstream_tls_unavailable\)$/);
    expect(server.overTls.length).toBe(before); // no HandshakeResponse41 was sent to it
  });
});
