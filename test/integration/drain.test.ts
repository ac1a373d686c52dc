/**
 * Graceful stop: SIGTERM stops accepting, lets open connections finish (up to drainTimeoutMs), then
 * exits 0.
 */
import { expect, test } from "bun:test";
import { startProxy, tempDir, writeConfig, eventually } from "../helpers/proxy.ts";
import { connect, echoServer } from "../helpers/peers.ts";

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
    await open.closed;
    expect(p.accessLog().at(-1)).toMatchObject({ reason: "drain_timeout" });
  } finally {
    await p.stop();
    echo.stop();
  }
});
