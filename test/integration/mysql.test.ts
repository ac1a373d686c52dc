/**
 * mysql listeners with real peers: two MariaDB servers (started by the test, databases alpha and
 * beta), the `mariadb` command-line client and PyMySQL. Each client reaches the right server by the
 * database it names, in plain text and with TLS ended by the proxy (--ssl); a wrong password gets
 * the server's own ERR; a user or database without a route, and a server that is down, get an ERR
 * from the proxy naming the reason; a user of ed25519 (a second AuthSwitchRequest, from the server)
 * authenticates; a 100 MB result (PyMySQL, and the CLI compared by sha256 with the server read
 * directly) and a LOAD DATA LOCAL upload (row count and sha256 computed by the server), each in
 * plain text and over TLS, pass whole; TCP_MYSQL_PORT with a
 * resolver routes by database. The first server also offers SSL: a route with upstreamTls reaches
 * it over TLS (checked on the server with Ssl_cipher, for a user it only lets in over SSL).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { makePki, type Pki } from "../helpers/certs.ts";
import { eventually, startProxy, tempDir, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { mariadbAvailable, startMariaDb, type MariaDb } from "../helpers/mariadb.ts";
import { freePort } from "../helpers/peers.ts";

let pki: Pki;
let a: MariaDb;
let b: MariaDb;
let proxy: RunningProxy;
let port: number;

const ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp" };

async function run(cmd: string[], ms = 60_000): Promise<{ code: number; out: string }> {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", env: ENV });
  const timer = setTimeout(() => p.kill("SIGKILL"), ms);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, out: (out + err).trim() };
}

/** The mariadb CLI through the proxy; `tls` asks for TLS (the proxy's certificate is checked against the test CA). */
function mariadb(user: string, password: string, database: string | null, sql: string, tls: boolean, extra: string[] = []) {
  return run(["mariadb", "--no-defaults", "-h", "127.0.0.1", "-P", String(port), `-u${user}`, `-p${password}`, "-N", "-B",
    ...(tls ? ["--ssl", `--ssl-ca=${pki.ca}`, "--skip-ssl-verify-server-cert"] : ["--skip-ssl"]), ...extra,
    ...(database ? [database] : []), "-e", sql]);
}

/**
 * PyMySQL's connect arguments for TLS, or for none: PyMySQL 1.1+ tries TLS unasked when offered
 * (ssl_disabled turns that off; older versions, such as Debian 12's 1.0.2, never try it).
 */
function pyTls(tls: boolean): string {
  return tls
    ? `ssl={"ca": ${JSON.stringify(pki.ca)}, "check_hostname": False}`
    : `**({"ssl_disabled": True} if "ssl_disabled" in __import__("inspect").signature(pymysql.connections.Connection.__init__).parameters else {})`;
}

/** PyMySQL through the proxy: prints the rows of `sql` as JSON, or the error's code and message. */
function pymysql(user: string, password: string, database: string, sql: string, tls: boolean, extra = "") {
  const script = `
import json, sys, pymysql
try:
    c = pymysql.connect(host="127.0.0.1", port=${port}, user=${JSON.stringify(user)}, password=${JSON.stringify(password)},
                        database=${JSON.stringify(database)}, ${extra}${pyTls(tls)})
    cur = c.cursor()
    cur.execute(${JSON.stringify(sql)})
    print(json.dumps([list(r) for r in cur.fetchall()], separators=(",", ":")))
except pymysql.err.MySQLError as e:
    print("ERR", e.args[0], e.args[1])
`;
  return run(["/usr/bin/python3", "-c", script]);
}

const available = mariadbAvailable() && Bun.spawnSync(["/usr/bin/python3", "-c", "import pymysql"]).exitCode === 0;

describe.skipIf(!available)("mysql listener with MariaDB, mariadb and PyMySQL", () => {
  beforeAll(async () => {
    pki = makePki();
    const db = pki.issue("db", ["db.test"]);
    const dba = pki.issue("dba", ["dba.test"]);
    [a, b] = await Promise.all([startMariaDb(freePort(), { ...dba, ca: pki.ca }), startMariaDb(freePort())]);
    // Only over SSL: a login of this user through the proxy proves the proxy→server leg is TLS.
    a.sql(`create user secure@'%' identified by 'tight' require ssl; grant all on alpha.* to secure@'%';`);
    for (const [server, name] of [[a, "alpha"], [b, "beta"]] as const) {
      server.sql(`create database ${name}; create database attrs; create user app@'%' identified by 'secret'; grant all on *.* to app@'%';
        create user nobody@'%' identified by 'secret'; create table ${name}.t (id int primary key, v text);`);
      // A user of another plugin: the server answers the native-password response with its own AuthSwitchRequest.
      server.sql(`install soname 'auth_ed25519'; create user edna@'%' identified via ed25519 using password('curve'); grant all on ${name}.* to edna@'%';`);
    }
    port = freePort();
    proxy = await startProxy(["serve", "-c", writeConfig({
      listeners: [{
        name: "db", listen: `127.0.0.1:${port}`, protocol: "mysql", defaultCert: db,
        routes: [
          { name: "alpha", match: { database: "alpha", user: "app" }, upstreams: [`127.0.0.1:${a.port}`] },
          { name: "beta", match: { database: "beta", user: ["app", "edna"] }, upstreams: [`127.0.0.1:${b.port}`] },
          { name: "gone", match: { database: "gone" }, upstreams: [`127.0.0.1:${freePort()}`] }, // nothing listens there
          // Database "attrs" exists on both servers: the connection attributes choose.
          { name: "attrs-cli", match: { database: "attrs", connectionAttributes: { program_name: "mysql" } }, upstreams: [`127.0.0.1:${a.port}`] },
          { name: "attrs-report", match: { database: "attrs", connectionAttributes: { _client_name: "pymysql", program_name: "nightly-report" } }, upstreams: [`127.0.0.1:${a.port}`] },
          { name: "attrs-pymysql", match: { database: "attrs", connectionAttributes: { _client_name: ["pymysql"] } }, upstreams: [`127.0.0.1:${b.port}`] },
          { name: "alpha-tls", match: { database: "alpha", user: "secure" }, upstreams: [`127.0.0.1:${a.port}`], upstreamTls: { serverName: "dba.test", ca: pki.ca } },
          // Server b offers no SSL: a route that asks for it is refused, not downgraded.
          { name: "beta-tls", match: { database: "beta", user: "secure" }, upstreams: [`127.0.0.1:${b.port}`], upstreamTls: { serverName: "dba.test", ca: pki.ca } },
        ],
      }],
    })]);
  }, 120_000);

  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  for (const tls of [false, true]) {
    const how = tls ? "with --ssl (TLS ended by the proxy)" : "in plain text";
    test(`mariadb CLI ${how}: alpha reaches the first server, beta the second`, async () => {
      expect(await mariadb("app", "secret", "alpha", "select database(), @@port", tls)).toEqual({ code: 0, out: `alpha\t${a.port}` });
      expect(await mariadb("app", "secret", "beta", "select database(), @@port", tls)).toEqual({ code: 0, out: `beta\t${b.port}` });
      const status = await mariadb("app", "secret", "alpha", "status", tls);
      expect(status.code).toBe(0);
      if (tls) expect(status.out).toMatch(/SSL:\s+Cipher in use is TLS_/);
      else expect(status.out).toMatch(/SSL:\s+Not in use/);
    });

    test(`PyMySQL ${how}: routed by database`, async () => {
      expect(await pymysql("app", "secret", "alpha", "select database(), @@port", tls)).toEqual({ code: 0, out: JSON.stringify([["alpha", a.port]]) });
      expect(await pymysql("app", "secret", "beta", "select database(), @@port", tls)).toEqual({ code: 0, out: JSON.stringify([["beta", b.port]]) });
    });

    test(`a wrong password ${how}: the server's own ERR reaches the client`, async () => {
      const cli = await mariadb("app", "wrong", "beta", "select 1", tls);
      expect(cli.code).toBe(1);
      expect(cli.out).toBe("ERROR 1045 (28000): Access denied for user 'app'@'127.0.0.1' (using password: YES)");
      const py = await pymysql("app", "wrong", "alpha", "select 1", tls);
      expect(py.out).toBe("ERR 1045 Access denied for user 'app'@'127.0.0.1' (using password: YES)");
    });

    test(`a user with no route ${how}: an ERR from the proxy naming the reason`, async () => {
      const cli = await mariadb("nobody", "secret", "alpha", "select 1", tls);
      expect(cli.code).toBe(1);
      expect(cli.out).toBe('ERROR 1049 (42000): switchyard: no route for user "nobody" and database "alpha"');
      const py = await pymysql("nobody", "secret", "beta", "select 1", tls);
      expect(py.out).toBe('ERR 1049 switchyard: no route for user "nobody" and database "beta"');
    });
  }

  test("a server that switches plugin again (MariaDB's ed25519 user): that AuthSwitchRequest and the answer are relayed too", async () => {
    for (const tls of [false, true]) {
      expect(await mariadb("edna", "curve", "beta", "select current_user(), @@port", tls)).toEqual({ code: 0, out: `edna@%\t${b.port}` });
      expect((await mariadb("edna", "wrong", "beta", "select 1", tls)).out).toBe("ERROR 1045 (28000): Access denied for user 'edna'@'127.0.0.1' (using password: YES)");
    }
  });

  for (const tls of [false, true]) {
    test(`upstreamTls, client ${tls ? "with --ssl" : "in plain text"}: the proxy→server leg is TLS (Ssl_cipher on the server), in the userspace relay`, async () => {
      const r = await mariadb("secure", "tight", "alpha", "select @@port; show status like 'Ssl_cipher'", tls);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(new RegExp(`^${a.port}\nSsl_cipher\t[A-Z0-9_-]+$`));
      expect(r.out).not.toMatch(/Ssl_cipher\t$/);
      const status = await mariadb("secure", "tight", "alpha", "status", tls);
      expect(status.out).toMatch(tls ? /SSL:\s+Cipher in use is TLS_/ : /SSL:\s+Not in use/); // the client's own leg, as it asked
      // The reason may be a reset: MariaDB closes at COM_QUIT without waiting for the proxy's TLS close_notify.
      const logged = (l: Record<string, unknown>) => l.route === "alpha-tls" && l.tls === (tls ? "terminate" : "none") && Number(l.bytesOut) > 0;
      await eventually(() => proxy.accessLog().some(logged), 10_000, "access log");
      expect(proxy.accessLog().find(logged)?.relay).toBe("userspace");
    });
  }

  test("a route without upstreamTls to the same server: plaintext to it, even for a client on TLS (the operator's choice)", async () => {
    const r = await mariadb("app", "secret", "alpha", "select concat('[', variable_value, ']') from information_schema.session_status where variable_name = 'Ssl_cipher'", true);
    expect(r).toEqual({ code: 0, out: "[]" });
    // The user the upstreamTls route is for is let in by the server only over SSL: without, directly, it is refused.
    const direct = await run(["mariadb", "--no-defaults", "-h", "127.0.0.1", "-P", String(a.port), "-usecure", "-ptight", "--skip-ssl", "-e", "select 1"]);
    expect(direct).toEqual({ code: 1, out: "ERROR 1045 (28000): Access denied for user 'secure'@'127.0.0.1' (using password: YES)" });
  });

  test("upstreamTls to a server that offers no SSL: an ERR naming the reason, never a plaintext login", async () => {
    const r = await mariadb("secure", "tight", "beta", "select 1", true);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^ERROR 1105 \(08S01\): switchyard: server 127\.0\.0\.1:\d+ for user "secure" and database "beta" cannot be reached over TLS as its route requires: it does not offer TLS \(upstream_tls_unavailable\)$/);
  });

  for (const tls of [false, true]) {
    test(`routing by connection attributes ${tls ? "with TLS" : "in plain text"}: the mariadb CLI (program_name mysql), PyMySQL (_client_name pymysql) and PyMySQL with a program_name`, async () => {
      expect(await mariadb("app", "secret", "attrs", "select @@port", tls)).toEqual({ code: 0, out: String(a.port) });
      expect(await pymysql("app", "secret", "attrs", "select @@port", tls)).toEqual({ code: 0, out: JSON.stringify([[b.port]]) });
      expect(await pymysql("app", "secret", "attrs", "select @@port", tls, 'program_name="nightly-report", ')).toEqual({ code: 0, out: JSON.stringify([[a.port]]) });
      await eventually(() => ["attrs-cli", "attrs-pymysql", "attrs-report"].every((r) => proxy.accessLog().some((l) => l.route === r)), 10_000, "access log");
    });
  }

  test("no database named: ERR 1045 from the proxy (no route for the user alone)", async () => {
    const r = await mariadb("app", "secret", null, "select 1", false);
    expect(r).toEqual({ code: 1, out: 'ERROR 1045 (28000): switchyard: no route for user "app" (no database)' });
  });

  test("the chosen server is down: an ERR naming the server and the reason", async () => {
    const r = await mariadb("app", "secret", "gone", "select 1", true);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^ERROR 1105 \(08S01\): switchyard: server 127\.0\.0\.1:\d+ for user "app" and database "gone" is unreachable \(upstream_refused\)$/);
  });

  test("the access log has the user, database, route and how TLS was handled", async () => {
    await mariadb("app", "secret", "beta", "select 1", true);
    await eventually(() => proxy.accessLog().some((l) => l.route === "beta" && l.tls === "terminate" && l.reason === "done"), 10_000, "access log");
    expect(proxy.accessLog().find((l) => l.route === "beta" && l.tls === "terminate")).toMatchObject({ protocol: "mysql", user: "app", database: "beta", upstream: `127.0.0.1:${b.port}` });
    expect(proxy.accessLog().find((l) => l.user === "nobody")).toMatchObject({ route: null, reason: "no_route", database: expect.any(String) });
    expect(proxy.accessLog().find((l) => l.reason === "upstream_auth_refused")).toMatchObject({ user: "app" });
  });

  for (const tls of [false, true]) {
    test(`a 100 MB result ${tls ? "over TLS" : "in plain text"} arrives whole (PyMySQL)`, async () => {
      // 100 rows of 1 MiB each from MariaDB's sequence engine; the client sums what it received.
      const sql = "select seq, repeat(char(65 + seq % 26), 1048576) from seq_1_to_100";
      const script = `
import pymysql, hashlib
c = pymysql.connect(host="127.0.0.1", port=${port}, user="app", password="secret", database="alpha", ${pyTls(tls)})
cur = c.cursor()
cur.execute(${JSON.stringify(sql)})
n = 0
ok = True
for i, v in cur.fetchall():
    v = v.decode() if isinstance(v, bytes) else v  # char() gives a binary string
    n += len(v)
    ok = ok and v == chr(65 + i % 26) * 1048576
print(n, ok)
`;
      expect(await run(["/usr/bin/python3", "-c", script], 120_000)).toEqual({ code: 0, out: `${100 * 1048576} True` });
      // After authentication it is a plain relay: in plain text a kernel engine takes a stream this big.
      const big = (l: Record<string, unknown>) => Number(l.bytesOut) > 100 * 1048576 && l.tls === (tls ? "terminate" : "none");
      await eventually(() => proxy.accessLog().some(big), 10_000, "access log");
      expect(proxy.accessLog().find(big)?.relay).toBe(tls ? "userspace" : "splice");
    }, 120_000);
  }

  test("no file: TCP_MYSQL_PORT with PROXY_RESOLVER is a mysql listener, and the resolver routes on ctx.database, ctx.user and ctx.connectionAttributes", async () => {
    const dir = tempDir("switchyard-mysql-");
    const resolver = join(dir, "resolver.ts");
    writeFileSync(resolver, `export default { resolve(ctx) {
      if (ctx.user !== "app") return { status: 403, message: "unknown user" };
      if (ctx.connectionAttributes?.program_name === "to-beta") return { endpoint: "127.0.0.1:${b.port}" };
      return { endpoint: ctx.database === "beta" ? "127.0.0.1:${b.port}" : "127.0.0.1:${a.port}" };
    } };`);
    const mysqlPort = freePort();
    const env = await startProxy(["serve", "tcp"], { env: { ...ENV, TCP_MYSQL_PORT: String(mysqlPort), TCP_POSTGRES_PORT: String(freePort()),
      PROXY_RESOLVER: resolver, TCP_SKIP_VALIDATION: "true" } });
    try {
      const saved = port;
      port = mysqlPort;
      try {
        expect(await mariadb("app", "secret", "beta", "select database(), @@port", false)).toEqual({ code: 0, out: `beta\t${b.port}` });
        expect(await mariadb("app", "secret", "alpha", "select database(), @@port", false)).toEqual({ code: 0, out: `alpha\t${a.port}` });
        expect(await mariadb("nobody", "secret", "alpha", "select 1", false)).toEqual({ code: 1, out: "ERROR 1105 (HY000): switchyard: connection refused by the proxy (resolver_refused)" });
        // ctx.connectionAttributes: PyMySQL's program_name sends this one to the other server (and is in the cache key).
        expect(await pymysql("app", "secret", "attrs", "select @@port", false, 'program_name="to-beta", ')).toEqual({ code: 0, out: JSON.stringify([[b.port]]) });
        expect(await pymysql("app", "secret", "attrs", "select @@port", false)).toEqual({ code: 0, out: JSON.stringify([[a.port]]) });
      } finally {
        port = saved;
      }
    } finally {
      await env.stop();
    }
  }, 60_000);

  for (const tls of [false, true]) {
    const how = tls ? "over TLS" : "in plain text";
    const table = tls ? "up_tls" : "up_plain";

    test(`LOAD DATA LOCAL ${how} (mariadb --local-infile): the client's file arrives whole (row count and sha256 on the server)`, async () => {
      const dir = tempDir("switchyard-mysql-");
      const file = join(dir, "rows.tsv");
      // 200 000 rows (about 8 MB), lengths varied; no backslash or tab inside values (LOAD DATA's escapes).
      const rows = Array.from({ length: 200_000 }, (_, i) => `${i}\t${"row " + i + " é".repeat(i % 17) + "x".repeat((i * 7) % 40)}`);
      const content = rows.join("\n");
      writeFileSync(file, content + "\n");
      b.sql(`create table beta.${table} (id int primary key, v text) character set utf8mb4`);
      const sql = `load data local infile '${file}' into table ${table} character set utf8mb4;
        set session group_concat_max_len = 1 << 30;
        select count(*), sha2(group_concat(concat(id, char(9), v) order by id separator '\\n'), 256) from ${table}`;
      const load = await mariadb("app", "secret", "beta", sql, tls, ["--local-infile=1", "--default-character-set=utf8mb4"]);
      expect(load).toEqual({ code: 0, out: `200000\t${new Bun.CryptoHasher("sha256").update(content).digest("hex")}` });
    }, 60_000);

    test(`a 100 MB result ${how} through the mariadb CLI: the same rows and sha256 as read from the server directly`, async () => {
      const query = "select seq, sha2(seq, 256), repeat(char(65 + seq % 26), 1048576) from seq_1_to_100";
      const digest = `import sys, hashlib
h = hashlib.sha256(); n = 0
for line in sys.stdin.buffer:
    h.update(line); n += 1
print(n, h.hexdigest())`;
      const through = (p: number, extra: string) => run(["bash", "-o", "pipefail", "-c",
        `mariadb --no-defaults -h 127.0.0.1 -P ${p} -uapp -psecret -N -B --max-allowed-packet=256M ${extra} alpha -e "${query}" | python3 -c '${digest}'`], 120_000);
      const viaProxy = await through(port, tls ? `--ssl --ssl-ca=${pki.ca} --skip-ssl-verify-server-cert` : "--skip-ssl");
      const direct = await through(a.port, "--skip-ssl");
      expect(viaProxy.code).toBe(0);
      expect(viaProxy.out).toMatch(/^100 [0-9a-f]{64}$/);
      expect(viaProxy).toEqual(direct);
    }, 120_000);
  }
});
