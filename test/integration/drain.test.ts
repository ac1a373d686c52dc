/**
 * Graceful stop: SIGTERM stops accepting, lets open connections finish (up to drainTimeoutMs), then
 * exits 0.
 */
import { expect, test } from "bun:test";
import { startProxy, tempDir, writeConfig, eventually } from "../helpers/proxy.ts";
import type { Socket } from "bun";
import { connect, echoServer, serve, writeAll } from "../helpers/peers.ts";
import { makePki } from "../helpers/certs.ts";

test("SIGTERM: open connections finish, new ones are refused, exit 0 once they are done", async () => {
  const echo = echoServer();
  const p = await startProxy(["serve", "--relay", "userspace", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${echo.port}`]);
  try {
    const open = await connect(p.port);
    open.socket.write("before");
    await eventually(() => open.receivedText() === "before", 5000, "echo");
    process.kill(p.pid, "SIGTERM");
    await p.waitForLog("SIGTERM: draining open=1");
    const refused = await connect(p.port).then((c) => c.closed, (e) => ({ error: String(e.code ?? e) }));
    expect(refused.error).toBe("ECONNREFUSED");
    open.socket.write(" during");
    await eventually(() => open.receivedText() === "before during", 5000, "echo while draining");
    expect(p.proc.exitCode).toBeNull();
    open.socket.end();
    expect(await p.proc.exited).toBe(0);
    expect(p.accessLog().at(-1)).toMatchObject({ reason: "done" });
  } finally {
    await p.stop();
    echo.stop();
  }
});

test("SIGTERM: a connection still open at drainTimeoutMs is closed (drain_timeout), exit 0", async () => {
  const echo = echoServer();
  const p = await startProxy(["serve", "--relay", "userspace", "-c", writeConfig({
    drainTimeoutMs: 300,
    listeners: [{ listen: ["127.0.0.1:0"], routes: [{ upstreams: [`127.0.0.1:${echo.port}`] }] }],
  }, tempDir())]);
  try {
    const open = await connect(p.port);
    open.socket.write("x");
    await eventually(() => open.receivedText() === "x", 5000, "echo");
    const started = Date.now();
    process.kill(p.pid, "SIGTERM");
    expect(await p.proc.exited).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    // Cut mid-stream: a reset, so a client that reads to EOF does not take the end for a whole transfer.
    expect((await open.closed).error).toBe("ECONNRESET");
    expect(p.accessLog().at(-1)).toMatchObject({ reason: "drain_timeout" });
  } finally {
    await p.stop();
    echo.stop();
  }
});

for (const relay of ["userspace", "splice", "uring"]) {
  test(`${relay}: a second SIGTERM cuts open connections with RST on both sides, not FIN`, async () => {
    let backendClose: string | null | undefined;
    const backend = serve({
      data(s: Socket<any>, d: Uint8Array) { s.write(d); },
      error(_s: Socket<any>, e: Error) { backendClose ??= (e as any).code ?? e.message; },
      close(_s: Socket<any>, e?: Error) { backendClose ??= (e as any)?.code ?? null; },
    } as any);
    const p = await startProxy(["serve", "-c", writeConfig({
      relay, drainTimeoutMs: 60_000,
      listeners: [{ listen: ["127.0.0.1:0"], routes: [{ upstreams: [`127.0.0.1:${backend.port}`] }] }],
    }, tempDir())]);
    try {
      const open = await connect(p.port);
      await writeAll(open.socket, new Uint8Array(300_000).fill(7)); // past auto's handover threshold too
      await eventually(() => open.received().length === 300_000, 10_000, "echo");
      process.kill(p.pid, "SIGTERM");
      await p.waitForLog("SIGTERM: draining");
      process.kill(p.pid, "SIGTERM");
      expect(await p.proc.exited).toBe(0);
      expect((await open.closed).error).toBe("ECONNRESET");
      await eventually(() => backendClose !== undefined, 5_000, "backend close");
      expect(backendClose).toBe("ECONNRESET");
    } finally {
      await p.stop();
      backend.stop();
    }
  });
}

test("terminated TLS: a drain timeout resets the client's TCP connection", async () => {
  const pki = makePki();
  const echo = echoServer();
  const p = await startProxy(["serve", "-c", writeConfig({
    drainTimeoutMs: 300,
    listeners: [{ listen: ["127.0.0.1:0"], protocol: "tls", defaultCert: pki.issue("edge", ["edge.test"]),
      routes: [{ terminateTls: true, upstreams: [`127.0.0.1:${echo.port}`] }] }],
  }, tempDir())]);
  try {
    const closed = Promise.withResolvers<string | null>();
    let got = "";
    const s = await Bun.connect({ hostname: "127.0.0.1", port: p.port, tls: { serverName: "edge.test", ca: await Bun.file(pki.ca).text() },
      socket: {
        handshake(sock) { sock.write("over tls"); },
        data(_s, d) { got += new TextDecoder().decode(d); },
        error(_s, e) { closed.resolve((e as any).code ?? e.message); },
        close(_s, e) { closed.resolve((e as any)?.code ?? null); },
      } });
    await eventually(() => got === "over tls", 5_000, "echo over TLS");
    process.kill(p.pid, "SIGTERM");
    expect(await p.proc.exited).toBe(0);
    expect(await closed.promise).toBe("ECONNRESET");
    s.end();
    expect(p.accessLog().at(-1)).toMatchObject({ reason: "drain_timeout" });
  } finally {
    await p.stop();
    echo.stop();
  }
});
