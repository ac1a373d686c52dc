/**
 * caching_sha2_password (MySQL 8's default) through a mysql listener, against the fake server of
 * test/helpers/fake-mysql8.ts (MariaDB has no such plugin): the proxy relays the server's scramble
 * in its AuthSwitchRequest and then the plugin's own exchange, fast path and full path (the RSA
 * public key asked for and used by a client in plain text), with sequence ids rewritten.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { makePki, type Pki } from "../helpers/certs.ts";
import { startProxy, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { fakeMysql8, type FakeMysql8 } from "../helpers/fake-mysql8.ts";
import { freePort } from "../helpers/peers.ts";

let pki: Pki;
let server: FakeMysql8;
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
function pymysql(user: string, password: string, tls: boolean) {
  const tlsArgs = tls
    ? `ssl={"ca": ${JSON.stringify(pki.ca)}, "check_hostname": False}`
    : `**({"ssl_disabled": True} if "ssl_disabled" in __import__("inspect").signature(pymysql.connections.Connection.__init__).parameters else {})`;
  return run(["python3", "-c", `
import pymysql
try:
    c = pymysql.connect(host="127.0.0.1", port=${port}, user=${JSON.stringify(user)}, password=${JSON.stringify(password)}, database="eight", ${tlsArgs})
    c.ping(reconnect=False)
    print("ok")
except pymysql.err.MySQLError as e:
    print("ERR", e.args[0], e.args[1])
`]);
}

const available = Bun.spawnSync(["python3", "-c", "import pymysql, cryptography"]).exitCode === 0;

describe.skipIf(!available)("caching_sha2_password relayed to a MySQL 8-like server", () => {
  beforeAll(async () => {
    pki = makePki();
    server = fakeMysql8({ alice: "wonderland", bob: "builder", carol: "singer" });
    port = freePort();
    proxy = await startProxy(["serve", "-c", writeConfig({
      listeners: [{
        name: "eight", listen: `127.0.0.1:${port}`, protocol: "mysql", defaultCert: pki.issue("db", ["db.test"]),
        routes: [{ name: "eight", match: { database: "eight" }, upstreams: [`127.0.0.1:${server.port}`] }],
      }],
    })]);
  }, 60_000);

  afterAll(async () => {
    await proxy?.stop();
    server?.stop();
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

  test("full path with a TLS client: its password in clear meets a plaintext upstream, which refuses it (upstream TLS is not built)", async () => {
    expect(await pymysql("carol", "singer", true)).toEqual({ code: 0, out: "ERR 1045 Access denied for user 'carol' (cleartext-refused)" });
  });
});
