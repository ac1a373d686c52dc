/**
 * Every way an upstream or a resolver can fail gives the client a prompt close, a logged reason,
 * and leaves the proxy serving the next connection.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startProxy, writeConfig, tempDir, eventually, metricsJson, type RunningProxy } from "../helpers/proxy.ts";
import { connect, echoServer, serve, type Server } from "../helpers/peers.ts";

let echo: Server;
beforeAll(() => { echo = echoServer(); });
afterAll(() => echo?.stop());

/** A port with nothing listening: bind, note the port, close. */
async function closedPort(): Promise<number> {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

/** Prove the proxy still relays after a failure. */
async function stillServes(p: RunningProxy, port = p.port): Promise<void> {
  const c = await connect(port);
  c.socket.write("still here");
  await eventually(() => c.receivedText() === "still here", 5000, "echo after failure");
  c.socket.end();
  await c.closed;
}

function reasons(p: RunningProxy): string[] {
  return p.accessLog().map((r) => String(r.reason));
}

describe("upstream failures", () => {
  test("backend refuses: client closed promptly, reason upstream_refused, proxy keeps serving", async () => {
    const dead = await closedPort();
    const p = await startProxy(["serve", "--relay", "userspace", "-c", writeConfig({
      listeners: [
        { name: "dead", listen: ["127.0.0.1:0"], routes: [{ upstreams: [`127.0.0.1:${dead}`] }] },
        { name: "live", listen: ["127.0.0.1:0"], routes: [{ upstreams: [`127.0.0.1:${echo.port}`] }] },
      ],
    })]);
    try {
      const c = await connect(p.port);
      const started = Date.now();
      await c.closed;
      expect(Date.now() - started).toBeLessThan(3000); // "prompt": far below any timeout in play
      await eventually(() => reasons(p).includes("upstream_refused"), 5000, "reason");
      expect(p.stderr()).toContain("connection closed: upstream_refused");
      await stillServes(p, Number(p.addresses[1]!.split(":")[1]));
    } finally {
      await p.stop();
    }
  });

  test("backend resets mid-stream: the client sees a reset too", async () => {
    const resetting = serve({
      data(s: any, d: Uint8Array) {
        if (Buffer.from(d).toString().includes("boom")) s.terminate();
        else s.write(d);
      },
    } as any);
    const p = await startProxy(["serve", "--relay", "userspace", "--listen", "127.0.0.1:0", "--backend", `127.0.0.1:${resetting.port}`]);
    try {
      const c = await connect(p.port);
      c.socket.write("hello");
      await eventually(() => c.receivedText() === "hello", 5000, "echo before the reset");
      c.socket.write("boom");
      const { error } = await c.closed;
      expect(error).toBe("ECONNRESET");
      await eventually(() => reasons(p).includes("upstream_reset"), 5000, "reason");
    } finally {
      await p.stop();
      resetting.stop();
    }
  });

  test("backend never answers the connect: closed after connectTimeoutMs with reason connect_timeout", async () => {
    // A listener that never accepts, with its accept queue already full: further SYNs are dropped,
    // so a connect to it hangs, as to a host that does not answer.
    const blackhole = Bun.spawn(["/usr/bin/python3", "-c", [
      "import socket, sys, time",
      "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
      "fill = []",
      "for _ in range(4):",
      "    c = socket.socket(); c.setblocking(False)",
      "    try: c.connect(s.getsockname())",
      "    except BlockingIOError: pass",
      "    fill.append(c)",
      "print(s.getsockname()[1], flush=True)",
      "time.sleep(60)",
    ].join("\n")], { stdout: "pipe" });
    try {
      const reader = (blackhole.stdout as ReadableStream<Uint8Array>).getReader();
      const port = Number(new TextDecoder().decode((await reader.read()).value).trim());
      const p = await startProxy(["serve", "--relay", "userspace", "-c", writeConfig({
        listeners: [
          { name: "hole", listen: ["127.0.0.1:0"], connectTimeoutMs: 300, routes: [{ upstreams: [`127.0.0.1:${port}`] }] },
          { name: "live", listen: ["127.0.0.1:0"], routes: [{ upstreams: [`127.0.0.1:${echo.port}`] }] },
        ],
      })]);
      try {
        const c = await connect(p.port);
        const started = Date.now();
        await c.closed;
        const took = Date.now() - started;
        expect(took).toBeGreaterThanOrEqual(250);
        await eventually(() => reasons(p).includes("connect_timeout"), 5000, "reason");
        await stillServes(p, Number(p.addresses[1]!.split(":")[1]));
      } finally {
        await p.stop();
      }
    } finally {
      blackhole.kill();
      await blackhole.exited;
    }
  });
});

describe("resolver failures", () => {
  test("a resolver that throws, then hangs, then answers: two prompt closes with reasons, then a relay", async () => {
    const dir = tempDir();
    const resolver = join(dir, "resolver.ts");
    writeFileSync(resolver, `
      let calls = 0;
      export default {
        async resolve(ctx: { listener: string }) {
          calls++;
          if (calls === 1) throw new Error("no route for this tenant");
          if (calls === 2) return new Promise(() => {}); // never answers
          return { endpoint: process.env.ECHO_ENDPOINT!, cache: false };
        },
      };
    `);
    const p = await startProxy(["serve", "--relay", "userspace", "--resolver", resolver, "-c", writeConfig({
      listeners: [{ name: "r", listen: ["127.0.0.1:0"], resolveTimeoutMs: 300, skipValidation: true }],
    }, dir)], { env: { PATH: process.env.PATH!, ECHO_ENDPOINT: `127.0.0.1:${echo.port}` } });
    try {
      const thrown = await connect(p.port);
      await thrown.closed;
      await eventually(() => reasons(p).includes("resolver_error"), 5000, "resolver_error");
      expect(p.stderr()).toContain("no route for this tenant");

      const hung = await connect(p.port);
      const started = Date.now();
      await hung.closed;
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      await eventually(() => reasons(p).includes("resolver_timeout"), 5000, "resolver_timeout");

      await stillServes(p);
    } finally {
      await p.stop();
    }
  });

  test("SSRF: a resolver's answer in a special-purpose range is refused unless the listener opts out", async () => {
    const dir = tempDir();
    const resolver = join(dir, "resolver.js");
    writeFileSync(resolver, `export default { resolve: () => ({ endpoint: process.env.ECHO_ENDPOINT }) };`);
    const env = { PATH: process.env.PATH!, ECHO_ENDPOINT: `127.0.0.1:${echo.port}` };
    const p = await startProxy(["serve", "--relay", "userspace", "--resolver", resolver, "-c", writeConfig({
      listeners: [
        { name: "checked", listen: ["127.0.0.1:0"] },
        { name: "optout", listen: ["127.0.0.1:0"], skipValidation: true },
      ],
    }, dir)], { env });
    try {
      const c = await connect(p.port);
      await c.closed;
      await eventually(() => reasons(p).includes("ssrf_blocked"), 5000, "ssrf_blocked");
      expect(p.stderr()).toContain("127.0.0.1 is in 127.0.0.0/8 (Loopback)");
      await stillServes(p, Number(p.addresses[1]!.split(":")[1]));
    } finally {
      await p.stop();
    }
  });

  test("resolver hooks see connect and disconnect with byte counts", async () => {
    const dir = tempDir();
    const resolver = join(dir, "resolver.ts");
    const events = join(dir, "events.log");
    writeFileSync(resolver, `
      import { appendFileSync } from "node:fs";
      export default {
        resolve: () => ({ endpoint: process.env.ECHO_ENDPOINT }),
        onConnect: (i: any) => appendFileSync(${JSON.stringify(events)}, JSON.stringify({ on: "connect", ...i }) + "\\n"),
        onDisconnect: (i: any) => appendFileSync(${JSON.stringify(events)}, JSON.stringify({ on: "disconnect", ...i }) + "\\n"),
      };
    `);
    const p = await startProxy(["serve", "--relay", "userspace", "--resolver", resolver, "-c", writeConfig({
      admin: { listen: "127.0.0.1:0" },
      listeners: [{ name: "hooks", listen: ["127.0.0.1:0"], skipValidation: true }],
    }, dir)], { env: { PATH: process.env.PATH!, ECHO_ENDPOINT: `127.0.0.1:${echo.port}` } });
    try {
      await stillServes(p);
      const read = () => { try { return require("node:fs").readFileSync(events, "utf8").trim().split("\n").map((l: string) => JSON.parse(l)); } catch { return []; } };
      await eventually(() => read().length === 2, 5000, "hook events");
      const [connected, disconnected] = read();
      expect(connected).toMatchObject({ on: "connect", listener: "hooks", upstream: `127.0.0.1:${echo.port}` });
      expect(disconnected).toMatchObject({ on: "disconnect", bytesIn: 10, bytesOut: 10, reason: "done" });
      expect(disconnected.durationMs).toBeGreaterThanOrEqual(0);
      // Connections the resolver placed are counted under the route "(resolver)", not "-".
      const admin = Number(/admin API listening address=http:\/\/127\.0\.0\.1:(\d+)/.exec(p.stderr())![1]);
      const m = await metricsJson(admin);
      expect(m.routes["hooks/(resolver)"]).toMatchObject({ active: 0, total: 1, bytesIn: 10, bytesOut: 10, closes: { done: 1 } });
      expect(m.routes["hooks/-"]).toMatchObject({ total: 0 });
    } finally {
      await p.stop();
    }
  });
});

describe("gate", () => {
  test("maxConnections: the connection over the limit is closed with a reason; freed slots serve again", async () => {
    const p = await startProxy(["serve", "--relay", "userspace", "-c", writeConfig({
      listeners: [{ name: "capped", listen: ["127.0.0.1:0"], maxConnections: 2, routes: [{ upstreams: [`127.0.0.1:${echo.port}`] }] }],
    })]);
    try {
      const held = [await connect(p.port), await connect(p.port)];
      for (const c of held) c.socket.write("x");
      await eventually(() => held.every((c) => c.receivedText() === "x"), 5000, "both relayed");
      const over = await connect(p.port);
      await over.closed;
      await eventually(() => reasons(p).includes("max_connections"), 5000, "reason");
      held[0]!.socket.end();
      await held[0]!.closed;
      await eventually(() => reasons(p).includes("done"), 5000, "a slot freed");
      await stillServes(p);
      held[1]!.socket.end();
    } finally {
      await p.stop();
    }
  });
});
