/**
 * TLS listeners against real peers: openssl s_client and curl as clients; a plaintext echo server,
 * a plaintext HTTP server and `openssl s_server` (for passthrough) as upstreams. Certificates are
 * made at test time (test/helpers/certs.ts). Every test runs against both ways the proxy collects a
 * ClientHello (test/helpers/sniff-paths.ts): peeked, left in the kernel (native library), and read.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync, copyFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { makePki, type Pki } from "../helpers/certs.ts";
import { eventually, startProxy, tempDir, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { echoServer, freePort, serve, type Server } from "../helpers/peers.ts";
import { sniffClientHello } from "../../src/sniff/tls-hello.ts";
import { fingerprints } from "../../src/sniff/fingerprint.ts";
import { fixture, oneBytePerRecord, padHello } from "../helpers/fixtures.ts";
import { envFor, SNIFF_PATHS, type SniffPath } from "../helpers/sniff-paths.ts";

let pki: Pki;
let otherPki: Pki;
let echo: Server;
let http: ReturnType<typeof Bun.serve>;
let passBackend: Subprocess;
let passPort = 0;
let reencBackend: Subprocess;
/** A passthrough upstream that keeps what each connection sent it, in arrival order. */
let recorder: Server;
const recorded: Uint8Array[][] = [];
let reencPort = 0;
let blockedJa3 = "";
let blockedJa4 = "";
const ja4Client = (port: number) => ["openssl", "s_client", "-connect", `127.0.0.1:${port}`, "-servername", "ja4.example.org", "-tls1_2", "-alpn", "ja4-blocked"];
const procs: Subprocess[] = [];
const openssl = fixture("hello-openssl"); // openssl s_client -servername api.example.com

async function run(cmd: string[], input = "", ms = 15_000): Promise<{ code: number; out: string }> {
  const p = Bun.spawn(cmd, { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  procs.push(p);
  p.stdin.write(input);
  await p.stdin.end();
  const timer = setTimeout(() => p.kill("SIGKILL"), ms);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, out: out + err };
}

/** s_client with a line of input; the output holds the verified chain and what came back. */
function sClient(port: number, sni: string | null, input: string, extra: string[] = []) {
  const args = ["openssl", "s_client", "-connect", `127.0.0.1:${port}`, "-CAfile", pki.ca, "-verify_return_error", ...extra];
  if (sni) args.push("-servername", sni);
  else args.push("-noservername");
  // s_client ends at the end of its input; the sleep lets the answer arrive first.
  return run(["bash", "-c", `{ printf '%s' "$1"; sleep 1; } | ${args.map((a) => `'${a}'`).join(" ")}`, "sh", input]);
}

function subjectLine(out: string): string {
  return /subject=([^\n]*)/.exec(out)?.[1]?.trim() ?? "";
}

/** The fingerprints of a client command's ClientHello, captured on a raw listener. */
async function fingerprintsOf(cmd: (port: number) => string[]): Promise<{ ja3: string; ja4: string }> {
  let bytes = new Uint8Array(0);
  const raw = serve({ data(_s: unknown, d: Uint8Array) { bytes = new Uint8Array([...bytes, ...d]); } } as any);
  const p = Bun.spawn(cmd(raw.port), { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  await eventually(() => sniffClientHello(bytes).kind === "match", 10_000, "a ClientHello");
  p.kill();
  await p.exited;
  raw.stop();
  const r = sniffClientHello(bytes);
  if (r.kind !== "match") throw new Error("no hello");
  return fingerprints(r.facts);
}

beforeAll(async () => {
  pki = makePki();
  otherPki = makePki("another CA");
  const pass = pki.issue("pass", ["pass.example.com"]);
  pki.issue("alice", [], { client: true, cn: "alice" });
  otherPki.issue("mallory", [], { client: true, cn: "mallory" });

  echo = echoServer();
  recorder = serve({
    open(s: any) { s.data = []; recorded.push(s.data); },
    data(s: any, d: Uint8Array) { s.data.push(d); },
  } as any);
  http = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => new Response(`http upstream saw ${new URL(req.url).pathname}\n`) });
  passPort = freePort();
  passBackend = Bun.spawn(["openssl", "s_server", "-accept", `127.0.0.1:${passPort}`, "-cert", pass.cert, "-key", pass.key, "-rev", "-quiet"],
    { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  reencPort = freePort();
  reencBackend = Bun.spawn(["openssl", "s_server", "-accept", `127.0.0.1:${reencPort}`, "-cert", pass.cert, "-key", pass.key, "-rev", "-quiet"],
    { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  blockedJa3 = (await fingerprintsOf((port) => ["openssl", "s_client", "-connect", `127.0.0.1:${port}`, "-servername", "blocked.example.org", "-alpn", "blocked/1"])).ja3;
  blockedJa4 = (await fingerprintsOf(ja4Client)).ja4;
  // s_server is up once it answers a handshake.
  await eventually(() => Bun.spawnSync(["bash", "-c", `echo | timeout 3 openssl s_client -connect 127.0.0.1:${passPort} -servername pass.example.com`], { stdout: "pipe", stderr: "pipe" }).stdout.toString().includes("pass.example.com"), 15_000, "s_server");
}, 120_000);

afterAll(() => {
  passBackend?.kill();
  reencBackend?.kill();
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  echo?.stop();
  recorder?.stop();
  http?.stop(true);
});

/** A proxy for `path` with its own certificate files (the reload test rewrites them). */
async function startEdge(path: SniffPath): Promise<{ proxy: RunningProxy; apiCertDir: string }> {
  const certDir = tempDir("switchyard-certdir-");
  pki.issue("wild", ["*.example.com"], { into: certDir });
  const apiCertDir = tempDir("switchyard-api-");
  const api = pki.issue("api", ["api.example.com"], { into: apiCertDir });
  const fallback = pki.issue("fallback", ["fallback.test"]);
  const configPath = writeConfig({
    admin: { listen: "127.0.0.1:0" },
    listeners: [
      {
        name: "edge", listen: "127.0.0.1:0", protocol: "tls", certDir, defaultCert: fallback, handshakeTimeoutMs: 1500,
        protection: { ja3Blocklist: [blockedJa3], ja4Blocklist: [blockedJa4] },
        routes: [
          { name: "api", match: { sni: "api.example.com" }, terminateTls: true, cert: api, upstreams: [`127.0.0.1:${echo.port}`] },
          { name: "pass", match: { sni: "pass.example.com" }, terminateTls: false, upstreams: [`127.0.0.1:${passPort}`] },
          { name: "reenc", match: { sni: "reenc.example.com" }, terminateTls: true, upstreamTls: { serverName: "pass.example.com", ca: pki.ca }, upstreams: [`127.0.0.1:${reencPort}`] },
          { name: "reenc-bad", match: { sni: "reenc-bad.example.com" }, terminateTls: true, upstreamTls: { serverName: "other.example.com", ca: pki.ca }, upstreams: [`127.0.0.1:${reencPort}`] },
          { name: "reenc-off", match: { sni: "reenc-off.example.com" }, terminateTls: true, upstreamTls: { serverName: "other.example.com", verify: false }, upstreams: [`127.0.0.1:${reencPort}`] },
          { name: "alpn", match: { sni: "alpn.example.com", alpn: ["h2"] }, terminateTls: true, upstreams: [`127.0.0.1:${echo.port}`] },
          { name: "wild", match: { sni: "*.example.com" }, terminateTls: true, upstreams: [`127.0.0.1:${http.port}`] },
          { name: "default", match: { sni: "" }, terminateTls: true, upstreams: [`127.0.0.1:${http.port}`] },
        ],
      },
      {
        name: "mtls", listen: "127.0.0.1:0", protocol: "tls", defaultCert: fallback, mtls: { ca: pki.ca, requireClientCert: true },
        protection: { requireSni: true },
        routes: [{ name: "m", terminateTls: true, upstreams: [`127.0.0.1:${echo.port}`] }],
      },
      {
        // No default route: other names are refused.
        name: "strict", listen: "127.0.0.1:0", protocol: "tls",
        routes: [{ name: "recorded", match: { sni: "api.example.com" }, terminateTls: false, upstreams: [`127.0.0.1:${recorder.port}`] }],
      },
    ],
  });
  return { proxy: await startProxy(["serve", "-c", configPath], { env: envFor(path) }), apiCertDir };
}

for (const path of SNIFF_PATHS) describe(`ClientHello ${path.name}`, () => {
  let proxy: RunningProxy;
  let apiCertDir = "";
  beforeAll(async () => {
    ({ proxy, apiCertDir } = await startEdge(path));
  }, 60_000);
  afterAll(async () => {
    await proxy?.stop();
  });

  const edge = () => Number(proxy.addresses[0]!.split(":").pop());
  const mtlsPort = () => Number(proxy.addresses[1]!.split(":").pop());
  const strictPort = () => Number(proxy.addresses[2]!.split(":").pop());
  const records = () => proxy.accessLog();

  describe("SNI routes on one port: terminate and passthrough", () => {
    test("exact name: terminated with the route's certificate, relayed to the echo upstream", async () => {
      const r = await sClient(edge(), "api.example.com", "ping-exact\n");
      expect(subjectLine(r.out)).toContain("api.example.com");
      expect(r.out).toContain("Verify return code: 0 (ok)");
      expect(r.out).toContain("ping-exact");
    });

    test("wildcard name: curl gets certDir's *.example.com certificate and the HTTP upstream's answer", async () => {
      const port = edge();
      const r = await run(["curl", "-sS", "--cacert", pki.ca, "--resolve", `www.example.com:${port}:127.0.0.1`, `https://www.example.com:${port}/wild`]);
      expect(r.out).toBe("http upstream saw /wild\n");
    });

    test("no matching name: the default route, with the listener's defaultCert", async () => {
      const port = edge();
      const r = await run(["curl", "-sS", "--cacert", pki.ca, "--resolve", `fallback.test:${port}:127.0.0.1`, `https://fallback.test:${port}/d`]);
      expect(r.out).toBe("http upstream saw /d\n");
      // a name the wildcard does not cover (two labels) also lands on the default
      const deep = await sClient(edge(), "a.b.example.com", "x");
      expect(subjectLine(deep.out)).toContain("fallback.test");
    });

    test("passthrough: the client talks TLS with the backend itself (its certificate, its answer)", async () => {
      const r = await sClient(edge(), "pass.example.com", "abc\n");
      expect(subjectLine(r.out)).toContain("pass.example.com");
      expect(r.out).toContain("cba"); // s_server -rev answers each line reversed
    });

    test("upstream TLS: terminated, then re-encrypted with SNI and verified against the CA; a name mismatch is refused", async () => {
      const bad = await sClient(edge(), "reenc-bad.example.com", "xyz\n");
      expect(bad.out).not.toContain("zyx");
      await eventually(() => records().some((l) => l.route === "reenc-bad"), 10_000, "reenc-bad record");
      expect(records().find((l) => l.route === "reenc-bad")!.reason).toBe("upstream_tls_failed");
      const r = await sClient(edge(), "reenc.example.com", "abc\n");
      expect(subjectLine(r.out)).toContain("*.example.com"); // the proxy's certificate, not the backend's
      expect(r.out).toContain("cba");
    });

    test("upstream TLS with verify false: a certificate for another name is accepted, and the connection is not logged as failed", async () => {
      const r = await sClient(edge(), "reenc-off.example.com", "fed\n");
      expect(r.out).toContain("def");
      await eventually(() => records().some((l) => l.route === "reenc-off"), 10_000, "reenc-off record");
      expect(records().find((l) => l.route === "reenc-off")!.reason).not.toBe("upstream_tls_failed");
    });

    test("alpn in the access log is what was negotiated, alpnOffered what the client offered", async () => {
      // -tls1_2: s_client's TLS 1.3 hello with an ALPN list has the blocked JA3 (JA3 does not see ALPN values).
      const r = await sClient(edge(), "alpn.example.com", "ping-alpn\n", ["-tls1_2", "-alpn", "http/1.1,h2"]);
      expect(r.out).toContain("ALPN protocol: h2");
      await eventually(() => records().some((l) => l.route === "alpn"), 10_000, "alpn record");
      expect(records().find((l) => l.route === "alpn")).toMatchObject({ alpn: "h2", alpnOffered: ["http/1.1", "h2"], tls: "terminate" });
    });

    test("the access log says how each connection was handled", async () => {
      // The passthrough connection stays open as long as s_server keeps its side open; its record comes later.
      await eventually(() => records().filter((l) => l.listener === "edge" && l.route !== null).length >= 3, 10_000, "access log");
      const byRoute = new Map(records().filter((l) => l.listener === "edge").map((l) => [l.route, l]));
      expect(byRoute.get("api")).toMatchObject({ sni: "api.example.com", tls: "terminate", relay: "userspace", reason: "done" });
      // curl offered h2 and http/1.1; a route without match.alpn selects none.
      expect(byRoute.get("wild")).toMatchObject({ sni: "www.example.com", alpn: null, alpnOffered: ["h2", "http/1.1"], tls: "terminate" });
      expect(String(byRoute.get("api")!.ja3)).toMatch(/^[0-9a-f]{32}$/);
      expect(String(byRoute.get("api")!.ja4)).toMatch(/^t13d/);
      const admin = Number(/admin API listening address=http:\/\/127\.0\.0\.1:(\d+)/.exec(proxy.stderr())![1]);
      const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics.json`)).json() as { tlsHandshakes: Record<string, number> };
      expect(metrics.tlsHandshakes["edge/passthrough"]).toBeGreaterThanOrEqual(1);
      expect(metrics.tlsHandshakes["edge/terminate"]).toBeGreaterThanOrEqual(3);
    });
  });

  describe("handshake protection", () => {
    test("a hello split into 1-byte records, sent one record per write, is reassembled and terminated", async () => {
      // A shim between s_client and the proxy re-frames the client's first record.
      const front = await shim(edge(), (first) => oneBytePerRecord(first));
      const r = await sClient(front.port, "api.example.com", "ping-split\n");
      front.stop();
      expect(subjectLine(r.out)).toContain("api.example.com");
      expect(r.out).toContain("ping-split");
    });

    test("hellos up to 2^14 bytes are routed whatever their framing: 2^14 in one record (16 389 bytes), 3 000 in 1-byte records (18 000)", async () => {
      for (const hello of [padHello(openssl, 16_384), oneBytePerRecord(padHello(openssl, 3000))]) {
        const before = recorded.length;
        const socket = await Bun.connect({ hostname: "127.0.0.1", port: strictPort(), socket: { data() {} } });
        // All but the last byte first: over 16 KiB collected and the hello not yet whole (where the old bound refused it).
        socket.write(hello.subarray(0, -1));
        await Bun.sleep(100);
        socket.write(hello.subarray(-1));
        // Passed through: the upstream gets exactly the client's bytes.
        await eventually(() => recorded.length > before && Buffer.concat(recorded[before]!).length >= hello.length, 10_000, "the hello at the upstream");
        expect(Buffer.concat(recorded[before]!).equals(Buffer.from(hello))).toBe(true);
        socket.end();
      }
    });

    test("a name no route serves: a fatal unrecognized_name alert, then the close", async () => {
      const r = await run(["openssl", "s_client", "-connect", `127.0.0.1:${strictPort()}`, "-servername", "unknown.example"]);
      expect(r.out).toContain("unrecognized name");
      await eventually(() => records().some((l) => l.listener === "strict" && l.reason === "no_route"), 10_000, "no_route record");
    });

    test("slowloris: a client that sends a few bytes of a hello and stops is closed at handshakeTimeoutMs", async () => {
      const closed = new Promise<void>((resolve) => {
        Bun.connect({ hostname: "127.0.0.1", port: edge(), socket: {
          open(s) { s.write(new Uint8Array([22, 3, 1, 0, 200, 1])); },
          data() {}, close() { resolve(); },
        } });
      });
      await closed; // bounded by the test timeout; the proxy's timeout is 1.5 s
      await eventually(() => records().some((l) => l.reason === "handshake_timeout"), 10_000, "handshake_timeout record");
    });

    test("a blocked JA3 is refused before any upstream is chosen", async () => {
      const r = await run(["openssl", "s_client", "-connect", `127.0.0.1:${edge()}`, "-servername", "blocked.example.org", "-alpn", "blocked/1"]);
      expect(r.out).not.toContain("subject=");
      await eventually(() => records().some((l) => l.reason === "ja3_blocked"), 10_000, "ja3_blocked record");
      expect(records().find((l) => l.reason === "ja3_blocked")).toMatchObject({ ja3: blockedJa3, route: null, upstream: null });
    });

    test("a blocked JA4 is refused too", async () => {
      const r = await run(ja4Client(edge()));
      expect(r.out).not.toContain("subject=");
      await eventually(() => records().some((l) => l.reason === "ja4_blocked"), 10_000, "ja4_blocked record");
      expect(records().find((l) => l.reason === "ja4_blocked")).toMatchObject({ ja4: blockedJa4, sni: "ja4.example.org", upstream: null });
    });

    test("a malformed hello is closed with a named reason and counted", async () => {
      const closed = new Promise<void>((resolve) => {
        Bun.connect({ hostname: "127.0.0.1", port: edge(), socket: {
          open(s) { s.write(new Uint8Array([22, 3, 1, 0, 4, 2, 0, 0, 0])); },
          data() {}, close() { resolve(); },
        } });
      });
      await closed;
      await eventually(() => records().some((l) => l.reason === "malformed_hello"), 10_000, "malformed_hello record");
      expect(proxy.stderr()).toContain("not_client_hello");
    });
  });

  describe("mTLS", () => {
    test("a client certificate from the CA is accepted and its subject logged", async () => {
      const r = await sClient(mtlsPort(), "m.test", "ping-mtls\n", ["-cert", join(pki.dir, "alice.pem"), "-key", join(pki.dir, "alice.key")]);
      expect(r.out).toContain("ping-mtls");
      await eventually(() => records().some((l) => l.listener === "mtls" && l.reason === "done"), 10_000, "mtls record");
      expect(records().find((l) => l.listener === "mtls" && l.reason === "done")).toMatchObject({ clientCert: "CN=alice", tls: "terminate" });
    });

    test("no client certificate, or one from another CA: refused", async () => {
      const none = await sClient(mtlsPort(), "m.test", "nope\n");
      expect(none.out).not.toContain("nope\nnope");
      const other = await sClient(mtlsPort(), "m.test", "nope\n", ["-cert", join(otherPki.dir, "mallory.pem"), "-key", join(otherPki.dir, "mallory.key")]);
      expect(other.out).not.toContain("nope\nnope");
      await eventually(() => records().filter((l) => l.listener === "mtls" && l.reason !== "done").length >= 2, 10_000, "refusals");
      expect(records().filter((l) => l.listener === "mtls" && l.reason !== "done").every((l) => l.upstream === null)).toBe(true);
    });

    test("requireSni: a hello without a server name is refused", async () => {
      await sClient(mtlsPort(), null, "x");
      await eventually(() => records().some((l) => l.reason === "sni_required"), 10_000, "sni_required record");
    });
  });

  describe("relay over terminated TLS", () => {
    test("32 MiB each way through a terminated route arrive intact, with backpressure", async () => {
      const total = 32 * 1024 * 1024;
      const data = new Uint8Array(total).map((_, i) => (i * 31 + (i >> 10)) & 0xff);
      const want = new Bun.CryptoHasher("sha256").update(data).digest("hex");
      const hash = new Bun.CryptoHasher("sha256");
      let sent = 0;
      let got = 0;
      const done = Promise.withResolvers<void>();
      const pump = (s: { write(d: Uint8Array): number; shutdown(): void }) => {
        while (sent < total) {
          const n = s.write(data.subarray(sent, Math.min(total, sent + 65536)));
          if (n <= 0) return;
          sent += n;
        }
        s.shutdown();
      };
      const sock = await Bun.connect({ hostname: "127.0.0.1", port: edge(), tls: { serverName: "api.example.com", ca: await Bun.file(pki.ca).text() },
        socket: {
          handshake: (s) => pump(s), drain: (s) => pump(s), close: () => done.resolve(),
          data(_s, d) { hash.update(d); got += d.length; if (got >= total) done.resolve(); },
        } });
      await done.promise;
      sock.end();
      expect(got).toBe(total);
      expect(hash.digest("hex")).toBe(want);
    }, 60_000);
  });

  describe("certificate reload", () => {
    test("a new certificate serves new connections, open ones carry on, a broken one keeps the last good", async () => {
      // An open connection through the api route (a Bun TLS client in this process).
      let got = "";
      const held = await Bun.connect({ hostname: "127.0.0.1", port: edge(), tls: { serverName: "api.example.com", ca: await Bun.file(pki.ca).text() },
        // Bun's TLS client drops what is written before its handshake ends, so write from there.
        socket: { data(_s, d) { got += new TextDecoder().decode(d); }, handshake(s) { s.write("before\n"); } } });
      await eventually(() => got.includes("before"), 10_000, "echo before the reload");
      // Re-issue api.example.com with another subject, in place, and reload.
      const again = makePki("second CA");
      const fresh = again.issue("api2", ["api.example.com"], { cn: "api.example.com v2" });
      copyFileSync(fresh.cert, join(apiCertDir, "api.pem"));
      copyFileSync(fresh.key, join(apiCertDir, "api.key"));
      const reloads = () => proxy.stderr().split("configuration reloaded").length - 1;
      process.kill(proxy.pid, "SIGHUP");
      await eventually(() => reloads() === 1, 10_000, "reload");
      const v2 = await run(["bash", "-c", `echo | openssl s_client -connect 127.0.0.1:${edge()} -servername api.example.com`]);
      expect(subjectLine(v2.out)).toContain("api.example.com v2");
      // Break the files: the last good (v2) stays, and the log says so.
      writeFileSync(join(apiCertDir, "api.pem"), "not a certificate");
      process.kill(proxy.pid, "SIGHUP");
      await proxy.waitForLog("keeping the last good one", 10_000);
      const still = await run(["bash", "-c", `echo | openssl s_client -connect 127.0.0.1:${edge()} -servername api.example.com`]);
      expect(subjectLine(still.out)).toContain("api.example.com v2");
      held.write("after\n");
      await eventually(() => got.includes("after"), 10_000, "echo after two reloads");
      held.end();
    }, 60_000);
  });

  describe("protocol versions and resumption", () => {
    const sh = (c: string) => run(["bash", "-c", c]).then((r) => r.out);
    test("TLS 1.0 and 1.1 are refused, TLS 1.2 and 1.3 accepted; a TLS 1.2 cipher without ECDHE+AEAD is refused", async () => {
      const at = `-connect 127.0.0.1:${edge()} -servername api.example.com`;
      expect(await sh(`echo | openssl s_client ${at} -tls1 2>&1`)).toContain("Cipher is (NONE)");
      expect(await sh(`echo | openssl s_client ${at} -tls1_1 2>&1`)).toContain("Cipher is (NONE)");
      expect(await sh(`echo | openssl s_client ${at} -tls1_2 2>&1`)).toContain("New, TLSv1.2");
      expect(await sh(`echo | openssl s_client ${at} -tls1_3 2>&1`)).toContain("New, TLSv1.3");
      expect(await sh(`echo | openssl s_client ${at} -tls1_2 -cipher AES128-SHA 2>&1`)).toContain("Cipher is (NONE)");
    });

    test("a TLS 1.2 session is resumed, also after a reload", async () => {
      const dir = tempDir();
      const at = `-connect 127.0.0.1:${edge()} -servername fallback.test -tls1_2`;
      await sh(`(sleep 1; echo) | openssl s_client ${at} -sess_out ${dir}/s.pem`);
      expect(await sh(`echo | openssl s_client ${at} -sess_in ${dir}/s.pem 2>&1`)).toContain("Reused, TLSv1.2");
      const before = proxy.stderr().split("configuration reloaded").length;
      process.kill(proxy.pid, "SIGHUP");
      await eventually(() => proxy.stderr().split("configuration reloaded").length > before, 10_000, "reload");
      expect(await sh(`echo | openssl s_client ${at} -sess_in ${dir}/s.pem 2>&1`)).toContain("Reused, TLSv1.2");
    });
  });
});

/** A TCP front that rewrites the client's first read with `rewrite`, writes it one record at a time, then relays. */
async function shim(port: number, rewrite: (first: Uint8Array) => Uint8Array) {
  const server = serve({
    open(s: any) { s.data = { up: null as any, first: true, queue: [] as Uint8Array[] }; },
    async data(s: any, d: Uint8Array) {
      if (!s.data.first) return s.data.up ? s.data.up.write(d) : s.data.queue.push(d);
      s.data.first = false;
      s.data.up = await Bun.connect({ hostname: "127.0.0.1", port, socket: {
        data(_u, back: Uint8Array) { s.write(back); }, close() { s.end(); },
      } });
      const framed = rewrite(d);
      for (let i = 0; i < framed.length; i += 6) { s.data.up.write(framed.subarray(i, i + 6)); await Bun.sleep(0); }
      for (const q of s.data.queue) s.data.up.write(q);
    },
    close(s: any) { s.data.up?.end(); },
  } as any);
  return server;
}
