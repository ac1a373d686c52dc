/**
 * The access log's fields and timing against real peers: ids unique across workers and reloads,
 * the address dialled beside the name written, a client that hangs up while the server still
 * talks (closed, not reset), and a line written as soon as its connection's close was handled.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, eventually, startProxy, tempDir, writeConfig } from "../helpers/proxy.ts";
import { connect, echoServer, serve, writeAll, type Server } from "../helpers/peers.ts";

let echo: Server;

beforeAll(() => {
  echo = echoServer();
});

afterAll(() => {
  echo?.stop();
});

/** One request/response through `port`, then the client's FIN; resolves when the proxy closed. */
async function exchange(port: number): Promise<void> {
  const c = await connect(port);
  await writeAll(c.socket, new TextEncoder().encode("ping"));
  await eventually(() => c.receivedText() === "ping", 10_000, "echo");
  c.socket.end();
  await c.closed;
}

test("ids are unique across workers (worker-n) and across a reload", async () => {
  const config = writeConfig({ workers: 2, listeners: [{ name: "t", listen: "127.0.0.1:0", routes: [{ name: "r", upstreams: [`127.0.0.1:${echo.port}`] }] }] });
  const p = await startProxy(["serve", "-c", config]);
  try {
    // SO_REUSEPORT spreads the connections over both workers; each worker counts from 1.
    for (let i = 0; i < 24; i++) await exchange(p.port);
    process.kill(p.pid, "SIGHUP");
    await eventually(() => (p.stderr().match(/SIGHUP: configuration reloaded|configuration reloaded/g) ?? []).length >= 2, 15_000, "both workers reloaded");
    for (let i = 0; i < 24; i++) await exchange(p.port);
    await eventually(() => p.accessLog().length === 48, 10_000, "48 records");
    const ids = p.accessLog().map((l) => l.id as string);
    expect(ids.every((id) => /^[0-9]+-[0-9]+$/.test(id))).toBe(true);
    expect(new Set(ids.map((id) => id.split("-")[0])).size).toBe(2);
    expect(new Set(ids).size).toBe(48);
  } finally {
    await p.stop();
  }
}, 60_000);

test("upstream is the name written, upstreamAddr the address dialled", async () => {
  const p = await startProxy(["serve", "-c", writeConfig({ listeners: [{ name: "t", listen: "127.0.0.1:0", routes: [{ name: "r", upstreams: [`localhost:${echo.port}`] }] }] })]);
  try {
    await exchange(p.port);
    await eventually(() => p.accessLog().length === 1, 10_000, "a record");
    expect(p.accessLog()[0]).toMatchObject({ upstream: `localhost:${echo.port}`, reason: "done" });
    expect(String(p.accessLog()[0]!.upstreamAddr)).toMatch(new RegExp(`^(127\\.0\\.0\\.1|\\[::1\\]):${echo.port}$`));
  } finally {
    await p.stop();
  }
});

test("a client that hangs up while the server is still writing is client_closed, not client_reset", async () => {
  // The server answers, then writes once more after the client has closed: the client's kernel
  // answers those bytes with RST, as it would without a proxy.
  const talker = serve({
    data(s: any) {
      s.write("answer\n");
      setTimeout(() => { s.write("more\n"); setTimeout(() => s.end(), 200); }, 300);
    },
    end() {}, // the client's FIN does not stop it
  } as any);
  const p = await startProxy(["serve", "--relay", "userspace", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${talker.port}`]);
  try {
    // close() right after the answer, as most clients do when they are done (a full close, not a half-close).
    const client = Bun.spawn(["/usr/bin/python3", "-c", `import socket; s = socket.create_connection(("127.0.0.1", ${p.port})); s.sendall(b"q"); print(s.recv(100).decode(), end=""); s.close()`], { stdout: "pipe", stderr: "pipe" });
    expect(await new Response(client.stdout).text()).toBe("answer\n");
    await client.exited;
    await eventually(() => p.accessLog().length === 1, 10_000, "a record");
    expect(p.accessLog()[0]!.reason).toBe("client_closed");
  } finally {
    await p.stop();
    talker.stop();
  }
});

test("a lone connection's line is written as soon as its close is handled, before anything that happens later", async () => {
  // stdout (access log) and stderr (log lines) into one file: the order of lines is the order of writes.
  const dir = tempDir();
  const out = join(dir, "out.log");
  const fd = openSync(out, "a");
  // userspace: a kernel engine's record (and so the line) comes with the next drain of its
  // completion queue, up to 10 ms after the engine closed the sockets (src/relay/handover.ts POLL_MS).
  const config = writeConfig({
    relay: "userspace",
    listeners: [
      { name: "t", listen: "127.0.0.1:0", routes: [{ name: "r", upstreams: [`127.0.0.1:${echo.port}`] }] },
      { name: "edge", listen: "127.0.0.1:0", protocol: "tls", routes: [{ name: "r", upstreams: [`127.0.0.1:${echo.port}`] }] },
    ],
  });
  const proc = Bun.spawn([BINARY, "serve", "-c", config], { stdout: fd, stderr: fd, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
  closeSync(fd);
  try {
    const text = () => readFileSync(out, "utf8");
    await eventually(() => text().includes("switchyard ready"), 10_000, "ready");
    const [tcp, tls] = [...text().matchAll(/INFO +listening address=\S+:(\d+)/g)].map((m) => Number(m[1]));
    // A client that half-closes and reads until the proxy's FIN, which the proxy sends as it finishes
    // the connection (Bun's end() closes a client socket at once, without waiting for that FIN).
    const client = Bun.spawn(["/usr/bin/python3", "-c", `import socket
s = socket.create_connection(("127.0.0.1", ${tcp}))
s.sendall(b"ping")
assert s.recv(4) == b"ping"
s.shutdown(socket.SHUT_WR)
while s.recv(100): pass
s.close()`], { stdout: "ignore", stderr: "pipe" });
    expect(await client.exited).toBe(0);
    // Then a malformed hello on the other listener, which writes a warning at once.
    await new Promise<void>((resolve) => {
      Bun.connect({ hostname: "127.0.0.1", port: tls!, socket: {
        open(s) { s.write(new Uint8Array([22, 3, 1, 0, 4, 2, 0, 0, 0])); }, data() {}, close() { resolve(); },
      } });
    });
    await eventually(() => text().includes('"listener":"t"') && text().includes("malformed_hello"), 10_000, "both lines");
    expect(text().indexOf('"listener":"t"')).toBeLessThan(text().indexOf("connection closed: malformed_hello"));
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
});
