/**
 * Native accept on the uring engine (issue 17; src/listen/native-accept.ts, native/src/uring.zig):
 * a tcp listener with `relay: uring` is accepted on by the engine, JS decides (gate, routes,
 * resolver) on a stand-in client and the engine dials and relays. What is tested here, through the
 * compiled binary: that no Bun socket exists (2 fds per pair, the engine's), the gate's refusals and
 * a missing route, failed and timed-out dials named as on the Bun path, reload (new connections take
 * the new routes, open ones carry on; a reload that needs bytes hands the socket to Bun), drain
 * (stops accepting, lets pairs finish, resets what is left at the deadline), and the opt-out
 * (SWITCHYARD_NATIVE_ACCEPT=off). The shared engine suite (uring.test.ts), the integrity suite
 * (relay-integrity.test.ts: "tcp, uring relay (native accept ...)") and the drain suite's uring case
 * run through native accept too.
 */
import { expect, test } from "bun:test";
import { readdirSync, writeFileSync } from "node:fs";
import { eventually, metricsJson, startProxy, tempDir, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { connect, echoServer, freePort, serve, type Client, type Server } from "../helpers/peers.ts";

const ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
const adminPort = (p: RunningProxy) => Number(/admin API listening address=http:\/\/127\.0\.0\.1:(\d+)/.exec(p.stderr())![1]);

function namedBackend(name: string): Server {
  return serve({ data(s: any) { s.write(name); }, end(s: any) { s.end(); } } as any);
}

async function ask(port: number): Promise<string> {
  const c = await connect(port);
  c.socket.write("who?");
  let closed = false;
  void c.closed.then(() => (closed = true));
  await eventually(() => c.receivedText().length > 0 || closed, 5000, "an answer or a close");
  const answer = c.receivedText();
  c.socket.end();
  await c.closed;
  return answer;
}

/**
 * Say something, shut the write side, and read the whole answer (a static responder answers at the
 * client's FIN). Python's socket, not the Bun client of test/helpers/peers.ts, whose end() closes
 * before the answer can be read.
 */
async function askAndEnd(port: number): Promise<string> {
  const py = Bun.spawn(["/usr/bin/python3", "-c", [
    "import socket, sys",
    `c = socket.create_connection(('127.0.0.1', ${port})); c.sendall(b'who?'); c.shutdown(socket.SHUT_WR)`,
    "out = b''",
    "while True:",
    "    d = c.recv(65536)",
    "    if not d: break",
    "    out += d",
    "sys.stdout.write(out.decode())",
  ].join("\n")], { stdout: "pipe" });
  return new Response(py.stdout).text();
}

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return text.trim();
}

const fdsOf = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

async function proxyFor(config: Record<string, unknown>, env: Record<string, string> = ENV): Promise<{ p: RunningProxy; file: string }> {
  const file = writeConfig({ relay: "uring", admin: { listen: "127.0.0.1:0" }, ...config }, tempDir());
  return { p: await startProxy(["serve", "-c", file], { env }), file };
}

test("the engine accepts: the log says so, a pair costs the proxy 2 fds (no Bun socket), the access log is as usual", async () => {
  const echo = echoServer();
  const { p } = await proxyFor({ listeners: [{ name: "edge", listen: ["127.0.0.1:0"], routes: [{ name: "r", upstreams: [`127.0.0.1:${echo.port}`] }] }] });
  const clients: Client[] = [];
  try {
    expect(p.stderr()).toContain("native accept listener=edge");
    expect(await ask(p.port)).toBe("who?");
    await eventually(() => p.accessLog().length === 1, 5000, "record");
    const base = fdsOf(p.pid);
    for (let i = 0; i < 50; i++) clients.push(await connect(p.port));
    clients.forEach((c, i) => c.socket.write(`n${i}`));
    await eventually(() => clients.every((c, i) => c.receivedText() === `n${i}`), 10_000, "echoes");
    expect(fdsOf(p.pid) - base).toBe(100);
    for (const c of clients) c.socket.end();
    await Promise.all(clients.map((c) => c.closed));
    await eventually(() => p.accessLog().length === 51, 10_000, "records");
    const r = p.accessLog()[1]!;
    expect(r).toMatchObject({ listener: "edge", route: "r", relay: "uring", reason: "done", protocol: "tcp", upstream: `127.0.0.1:${echo.port}` });
    expect(String(r.client)).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(p.accessLog().slice(1).every((x) => x.bytesIn === x.bytesOut && (x.bytesIn as number) >= 2)).toBe(true);
    const m = await metricsJson(adminPort(p));
    expect(JSON.stringify(m)).toContain('"done":51');
  } finally {
    for (const c of clients) c.socket.terminate();
    await p.stop();
    echo.stop();
  }
});

test("the gate and the route table decide as for Bun's connections: concurrency per IP, blocklist, no route", async () => {
  const echo = echoServer();
  const { p } = await proxyFor({
    listeners: [
      { name: "perip", listen: ["127.0.0.1:0"], protection: { maxConcurrentPerIp: 2 }, routes: [{ name: "r", upstreams: [`127.0.0.1:${echo.port}`] }] },
      { name: "blocked", listen: ["127.0.0.1:0"], protection: { blocklist: ["127.0.0.0/8"] }, routes: [{ name: "r", upstreams: [`127.0.0.1:${echo.port}`] }] },
      { name: "noroute", listen: ["127.0.0.1:0"], routes: [{ name: "only", match: { clientCidr: ["10.0.0.0/8"] }, upstreams: [`127.0.0.1:${echo.port}`] }] },
    ],
  });
  const [perIp, blocked, noRoute] = p.addresses.map((a) => Number(a.slice(a.lastIndexOf(":") + 1)));
  const held: Client[] = [];
  try {
    expect(p.stderr().split("native accept listener=").length - 1).toBe(3);
    for (let i = 0; i < 2; i++) {
      const c = await connect(perIp!);
      c.socket.write("hi");
      await eventually(() => c.receivedText() === "hi", 5000, "admitted");
      held.push(c);
    }
    expect(await ask(perIp!)).toBe(""); // the third is closed unanswered
    expect(await ask(blocked!)).toBe("");
    expect(await ask(noRoute!)).toBe("");
    await eventually(() => p.accessLog().length === 3, 5000, "three records");
    expect(p.accessLog().map((r) => [r.listener, r.reason, r.relay])).toEqual([
      ["perip", "concurrency_limited", null], ["blocked", "cidr_blocklist", null], ["noroute", "no_route", null],
    ]);
    const m = JSON.stringify(await metricsJson(adminPort(p)));
    expect(m).toContain('"concurrency_limited":1');
    expect(m).toContain('"cidr_blocklist":1');
    // A place freed is taken again.
    held[0]!.socket.end();
    await held[0]!.closed;
    await eventually(() => p.accessLog().length === 4, 5000, "the record of the one that left");
    expect(await ask(perIp!)).toBe("who?");
  } finally {
    for (const c of held) c.socket.terminate();
    await p.stop();
    echo.stop();
  }
});

test("a refused dial is upstream_refused, an unanswered one connect_timeout, as on the Bun path", async () => {
  // Port 1 (tcpmux), where nobody listens; and a listener whose accept queue is full, so the
  // kernel drops further SYNs (no answer): backlog 0 holds one connection, two fill it.
  const deadPort = 1;
  const full = Bun.spawn(["/usr/bin/python3", "-c", [
    "import socket, sys, time",
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
    "p = s.getsockname()[1]",
    "a = socket.create_connection(('127.0.0.1', p)); b = socket.socket(); b.setblocking(False); b.connect_ex(('127.0.0.1', p))",
    "time.sleep(0.1)",
    "print(p, flush=True); time.sleep(60)",
  ].join("\n")], { stdout: "pipe" });
  const fullPort = Number(await firstLine(full.stdout));
  const { p } = await proxyFor({
    listeners: [
      { name: "dead", listen: ["127.0.0.1:0"], routes: [{ upstreams: [`127.0.0.1:${deadPort}`] }] },
      { name: "slow", listen: ["127.0.0.1:0"], connectTimeoutMs: 300, routes: [{ upstreams: [`127.0.0.1:${fullPort}`] }] },
    ],
  });
  const [dead, slow] = p.addresses.map((a) => Number(a.slice(a.lastIndexOf(":") + 1)));
  try {
    expect(await ask(dead!)).toBe("");
    await eventually(() => p.accessLog().length === 1, 5000, "record");
    expect(p.accessLog()[0]).toMatchObject({ listener: "dead", reason: "upstream_refused", relay: null, bytesIn: 0 });
    expect(p.stderr()).toContain("connection closed: upstream_refused");
    const t0 = Date.now();
    expect(await ask(slow!)).toBe("");
    await eventually(() => p.accessLog().length === 2, 5000, "record");
    expect(p.accessLog()[1]).toMatchObject({ listener: "slow", reason: "connect_timeout", relay: null });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
    expect(Date.now() - t0).toBeLessThan(3000);
  } finally {
    await p.stop();
    full.kill();
  }
});

test("reload: new connections take the new routes, open ones carry on; a reload that needs bytes hands the socket to Bun", async () => {
  const blue = namedBackend("blue");
  const green = namedBackend("green");
  const listener = (upstream: number, extra: object = {}) => ({ name: "edge", listen: ["127.0.0.1:0"], routes: [{ name: "r", upstreams: [`127.0.0.1:${upstream}`] }], ...extra });
  const { p, file } = await proxyFor({ listeners: [listener(blue.port)] });
  try {
    const port = p.port;
    expect(await ask(port)).toBe("blue");
    const open = await connect(port);
    open.socket.write("1");
    await eventually(() => open.receivedText() === "blue", 5000, "first answer");
    writeFileSync(file, JSON.stringify({ relay: "uring", admin: { listen: "127.0.0.1:0" }, listeners: [listener(green.port)] }));
    process.kill(p.pid, "SIGHUP");
    await p.waitForLog("SIGHUP: configuration reloaded");
    expect(await ask(port)).toBe("green");
    open.socket.write("2");
    await eventually(() => open.receivedText() === "blueblue", 5000, "the open pair still on blue");
    expect(p.stderr()).not.toContain("native accept off");

    // A respond route needs the proxy to speak: Bun takes the socket over, same port.
    writeFileSync(file, JSON.stringify({ relay: "uring", admin: { listen: "127.0.0.1:0" }, listeners: [{ name: "edge", listen: ["127.0.0.1:0"], routes: [{ name: "static", respond: { body: "static\n" } }] }] }));
    process.kill(p.pid, "SIGHUP");
    await p.waitForLog("native accept off listener=edge");
    await p.waitForLog(/native accept off[\s\S]*configuration reloaded/);
    const answer = await askAndEnd(port);
    expect(answer, p.stderr()).toStartWith("HTTP/1.1 200 OK");
    expect(answer).toEndWith("static\n");
    open.socket.write("3");
    await eventually(() => open.receivedText() === "blueblueblue", 5000, "the open pair still relayed by the engine");
    open.socket.end();
    await open.closed;
  } finally {
    await p.stop();
    blue.stop();
    green.stop();
  }
});

test("drain: accepting stops at once, open pairs finish; what is left at drainTimeoutMs is reset", async () => {
  const echo = echoServer();
  const { p } = await proxyFor({ drainTimeoutMs: 1500, listeners: [{ listen: ["127.0.0.1:0"], routes: [{ upstreams: [`127.0.0.1:${echo.port}`] }] }] });
  try {
    const finishes = await connect(p.port);
    const lingers = await connect(p.port);
    for (const c of [finishes, lingers]) c.socket.write("before");
    await eventually(() => [finishes, lingers].every((c) => c.receivedText() === "before"), 5000, "echoes");
    const started = Date.now();
    process.kill(p.pid, "SIGTERM");
    await p.waitForLog("SIGTERM: draining open=2");
    const refused = await connect(p.port).then((c) => c.closed, (e) => ({ error: String(e.code ?? e) }));
    expect(refused.error).toBe("ECONNREFUSED");
    finishes.socket.write(" during");
    await eventually(() => finishes.receivedText() === "before during", 5000, "echo while draining");
    finishes.socket.end();
    expect((await finishes.closed).error).toBeNull();
    expect(await p.proc.exited).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    expect((await lingers.closed).error).toBe("ECONNRESET");
    const reasons = p.accessLog().map((r) => r.reason).sort();
    expect(reasons).toEqual(["done", "drain_timeout"]);
  } finally {
    await p.stop();
    echo.stop();
  }
});

test("2 workers: each accepts natively on its own SO_REUSEPORT socket and ring", async () => {
  const echo = echoServer();
  const { p } = await proxyFor({ workers: 2, listeners: [{ name: "edge", listen: ["127.0.0.1:0"], routes: [{ upstreams: [`127.0.0.1:${echo.port}`] }] }] });
  try {
    await eventually(() => (p.stderr().match(/native accept .*listener=edge/g) ?? []).length === 2, 10_000, "both workers accept natively");
    const answers = await Promise.all(Array.from({ length: 20 }, () => ask(p.port)));
    expect(answers.every((a) => a === "who?")).toBe(true);
  } finally {
    await p.stop();
    echo.stop();
  }
}, 60_000);

test("SWITCHYARD_NATIVE_ACCEPT=off: Bun accepts and hands the pair over at connect, the log says why", async () => {
  const echo = echoServer();
  const { p } = await proxyFor({ listeners: [{ name: "edge", listen: ["127.0.0.1:0"], routes: [{ upstreams: [`127.0.0.1:${echo.port}`] }] }] }, { ...ENV, SWITCHYARD_NATIVE_ACCEPT: "off" });
  try {
    expect(p.stderr()).toMatch(/native accept off listener=edge address=127\.0\.0\.1:\d+ reason="refused by SWITCHYARD_NATIVE_ACCEPT=off"/);
    const c = await connect(p.port);
    c.socket.write("x");
    await eventually(() => c.receivedText() === "x", 5000, "echo");
    c.socket.end();
    await c.closed;
    await eventually(() => p.accessLog().length === 1, 5000, "record");
    expect(p.accessLog()[0]!.relay).toBe("uring");
  } finally {
    await p.stop();
    echo.stop();
  }
});

test("not asked for: relay splice or a protocol that reads first keeps Bun's accept, without a log line", async () => {
  const echo = echoServer();
  const { p } = await proxyFor({ relay: "splice", listeners: [{ name: "edge", listen: ["127.0.0.1:0"], routes: [{ upstreams: [`127.0.0.1:${echo.port}`] }] }] });
  try {
    expect(await ask(p.port)).toBe("who?");
    expect(p.stderr()).not.toContain("native accept");
  } finally {
    await p.stop();
    echo.stop();
  }
});

test("a route that sends a PROXY header keeps Bun's accept (JS writes the header at connect), the log says why, the header arrives first", async () => {
  let got = "";
  const recorder = serve({ data(_s, d) { got += Buffer.from(d).toString("latin1"); } } as Parameters<typeof serve>[0]);
  const { p } = await proxyFor({ listeners: [{ name: "edge", listen: ["127.0.0.1:0"], routes: [{ name: "pp", upstreams: [`127.0.0.1:${recorder.port}`], proxyProtocol: "v1" }] }] });
  try {
    expect(p.stderr()).toMatch(/native accept off listener=edge address=127\.0\.0\.1:\d+ reason="route pp sends a PROXY header/);
    const c = await connect(p.port);
    c.socket.write("payload");
    await eventually(() => got.endsWith("payload"), 5000, "the bytes at the backend");
    expect(got).toMatch(/^PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ \d+\r\npayload$/);
    c.socket.end();
  } finally {
    await p.stop();
    recorder.stop();
  }
});

/** Counts and hashes what it receives; at the client's FIN answers "<bytes> <sha256>" and ends. */
function hashingSink(): Server {
  return serve({
    open(s: any) { s.data = { n: 0, hash: new Bun.CryptoHasher("sha256") }; },
    data(s: any, d: Uint8Array) { s.data.n += d.length; s.data.hash.update(d); },
    end(s: any) { s.write(`${s.data.n} ${s.data.hash.digest("hex")}`); s.end(); },
  } as any);
}

/**
 * `mib` MiB of a pattern one way through `port`, then FIN; the sink's answer must match what was
 * sent (Python's socket: it reads on after its FIN, see askAndEnd).
 */
async function streamThrough(port: number, mib: number): Promise<void> {
  const py = Bun.spawn(["/usr/bin/python3", "-c", [
    "import hashlib, socket, sys",
    "chunk = bytes((i * 31 + 7) & 255 for i in range(256 * 1024)); h = hashlib.sha256()",
    `c = socket.create_connection(('127.0.0.1', ${port}))`,
    `for _ in range(${mib * 4}):`,
    "    c.sendall(chunk); h.update(chunk)",
    "c.shutdown(socket.SHUT_WR)",
    "out = b''",
    "while True:",
    "    d = c.recv(65536)",
    "    if not d: break",
    "    out += d",
    `sys.stdout.write(out.decode() + '|' + str(${mib * 4} * len(chunk)) + ' ' + h.hexdigest())`,
  ].join("\n")], { stdout: "pipe" });
  const [answer, sent] = (await new Response(py.stdout).text()).split("|");
  expect(answer).toBe(sent!);
}

/** 64 KiB exchanges with an echo server, `rounds` of them (request/response: bytes both ways). */
async function pingPong(port: number, rounds: number): Promise<void> {
  const c = await connect(port);
  const chunk = new Uint8Array(64 * 1024).map((_, i) => (i * 13) & 255);
  for (let i = 0; i < rounds; i++) {
    c.socket.write(chunk);
    await eventually(() => c.received().length === (i + 1) * chunk.length, 10_000, `echo ${i}`);
  }
  c.socket.end();
  await c.closed;
}

test("relay auto: a natively accepted stream moves from uring to splice (1 MiB one way), request/response stays on uring", async () => {
  const sink = hashingSink();
  const echo = echoServer();
  const [streamPort, echoPort] = [freePort(), freePort()];
  const file = writeConfig({ admin: { listen: "127.0.0.1:0" }, listeners: [
    { name: "stream", listen: [`127.0.0.1:${streamPort}`], routes: [{ name: "r", upstreams: [`127.0.0.1:${sink.port}`] }] },
    { name: "rr", listen: [`127.0.0.1:${echoPort}`], routes: [{ name: "r", upstreams: [`127.0.0.1:${echo.port}`] }] },
  ] }, tempDir());
  const p = await startProxy(["serve", "-c", file], { env: ENV });
  try {
    expect(p.stderr()).toContain('streams="splice after 1 MiB one way"');
    await streamThrough(streamPort, 8);
    // 48 round trips of 64 KiB: 3 MiB each way, never 1 MiB one way without an answer.
    await pingPong(echoPort, 48);
    await eventually(() => p.accessLog().length === 2, 5000, "records");
    const byListener = Object.fromEntries(p.accessLog().map((r) => [r.listener, r]));
    expect(byListener.stream).toMatchObject({ relay: "splice", reason: "done", bytesIn: 8 << 20 });
    expect(byListener.stream!.bytesOut).toBe(String(8 << 20).length + 65);
    expect(byListener.rr).toMatchObject({ relay: "uring", reason: "done", bytesIn: 48 * 65536, bytesOut: 48 * 65536 });
    // The metrics: one stream handed over; a connection held open is a uring pair, none is splice's.
    const held = await connect(echoPort);
    held.socket.write("still here");
    await eventually(() => held.receivedText() === "still here", 5000, "the held echo");
    const m = await metricsJson(adminPort(p));
    expect(m.streamsToSplice).toBe(1);
    expect(m.relayPairs).toEqual({ uring: 1, splice: 0 });
    const text = await (await fetch(`http://127.0.0.1:${adminPort(p)}/metrics`)).text();
    expect(text).toContain('switchyard_relay_pairs{engine="uring"} 1');
    expect(text).toContain("switchyard_relay_streams_to_splice_total 1");
    held.socket.end();
    await held.closed;
  } finally {
    await p.stop();
    sink.stop();
    echo.stop();
  }
});

test("relay uring (by name): a stream stays on the uring engine", async () => {
  const sink = hashingSink();
  const port = freePort();
  const file = writeConfig({ relay: "uring", listeners: [{ name: "stream", listen: [`127.0.0.1:${port}`], routes: [{ name: "r", upstreams: [`127.0.0.1:${sink.port}`] }] }] }, tempDir());
  const p = await startProxy(["serve", "-c", file], { env: ENV });
  try {
    await streamThrough(port, 4);
    await eventually(() => p.accessLog().length === 1, 5000, "record");
    expect(p.accessLog()[0]).toMatchObject({ relay: "uring", reason: "done", bytesIn: 4 << 20 });
  } finally {
    await p.stop();
    sink.stop();
  }
});

test("relay auto (the default): a tcp listener is accepted natively (uring); one that reads a PROXY header is Bun's and moves to splice once busy", async () => {
  const echo = echoServer();
  const [plainPort, behindPort] = [freePort(), freePort()];
  const file = writeConfig({ listeners: [
    { name: "plain", listen: [`127.0.0.1:${plainPort}`], routes: [{ name: "r", upstreams: [`127.0.0.1:${echo.port}`] }] },
    { name: "behind-lb", listen: [`127.0.0.1:${behindPort}`], acceptProxyProtocol: { from: ["127.0.0.1/32"] }, routes: [{ name: "r", upstreams: [`127.0.0.1:${echo.port}`] }] },
  ] }, tempDir());
  const p = await startProxy(["serve", "-c", file], { env: ENV });
  try {
    expect(p.stderr()).toContain("relay engine: splice configured=auto");
    expect(p.stderr()).toContain("nativeAccept=uring");
    expect(p.stderr()).toContain("native accept listener=plain");
    expect(p.stderr()).toMatch(/native accept off listener=behind-lb .*acceptProxyProtocol/);
    expect(await ask(plainPort)).toBe("who?");
    // 1 MiB through the PROXY-header listener: past auto's 256 KiB it goes to splice.
    const c = await connect(behindPort);
    c.socket.write("PROXY TCP4 192.0.2.7 127.0.0.1 4000 80\r\n");
    const chunk = new Uint8Array(64 * 1024).map((_, i) => (i * 13) & 255);
    for (let i = 0; i < 16; i++) {
      c.socket.write(chunk);
      await eventually(() => c.received().length === (i + 1) * chunk.length, 10_000, `echo ${i}`);
    }
    c.socket.end();
    await c.closed;
    await eventually(() => p.accessLog().length === 2, 5000, "records");
    const [plain, behind] = p.accessLog();
    expect(plain).toMatchObject({ listener: "plain", relay: "uring", reason: "done" });
    expect(behind).toMatchObject({ listener: "behind-lb", relay: "splice", reason: "done", client: "192.0.2.7:4000", bytesIn: 16 * chunk.length });
  } finally {
    await p.stop();
    echo.stop();
  }
});
