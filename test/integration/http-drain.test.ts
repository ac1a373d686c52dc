/**
 * Drain and reload on an http listener: an idle keep-alive client connection is closed at once
 * (reason drained_idle), a busy one gets its current response with `Connection: close` and is closed
 * after it; SIGTERM then exits as soon as they are done, long before drainTimeoutMs. After a reload
 * the old configuration's connections go the same way, and new requests see the new routes. The
 * backend answers /slow after 1500 ms, everything else at once (a raw Bun server).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import type { Socket } from "bun";
import { eventually, startProxy, writeConfig } from "../helpers/proxy.ts";

const dec = new TextDecoder();
let backend: import("bun").TCPSocketListener<{ buf: string }>;

beforeAll(() => {
  backend = Bun.listen<{ buf: string }>({
    hostname: "127.0.0.1", port: 0,
    socket: {
      open(s) { s.data = { buf: "" }; },
      data(s: Socket<{ buf: string }>, d: Uint8Array) {
        s.data.buf += dec.decode(d);
        for (let end = s.data.buf.indexOf("\r\n\r\n"); end >= 0; end = s.data.buf.indexOf("\r\n\r\n")) {
          const head = s.data.buf.slice(0, end);
          s.data.buf = s.data.buf.slice(end + 4);
          const path = head.split(" ")[1]!;
          const tag = /x-config: (\w+)/i.exec(head)?.[1] ?? "?";
          const answer = `HTTP/1.1 200 OK\r\nContent-Length: ${path.length + tag.length + 1}\r\n\r\n${tag} ${path}`;
          if (path === "/slow") setTimeout(() => s.write(answer), 1500);
          else s.write(answer);
        }
      },
    },
  });
});

afterAll(() => backend?.stop(true));

/** A raw keep-alive client: send, read whole responses, see the close. */
async function client(port: number) {
  let buf = "";
  let closedAt = 0;
  let wake: (() => void) | null = null;
  const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: {
    data(_s, d) { buf += dec.decode(d); wake?.(); },
    close() { closedAt = Date.now(); wake?.(); },
  } });
  return {
    get closedAt() { return closedAt; },
    send(path: string) { s.write(`GET ${path} HTTP/1.1\r\nHost: h.test\r\n\r\n`); },
    /** The next whole response (head and body). */
    async response(): Promise<string> {
      for (;;) {
        const m = /^HTTP\/1\.1 \d+[^\r]*\r\n((?:[^\r]+\r\n)*)\r\n/.exec(buf);
        const len = m ? Number(/content-length: (\d+)/i.exec(m[1]!)?.[1] ?? 0) : -1;
        if (m && buf.length >= m[0].length + len) {
          const r = buf.slice(0, m[0].length + len);
          buf = buf.slice(r.length);
          return r;
        }
        if (closedAt) throw new Error(`closed; got ${JSON.stringify(buf)}`);
        await new Promise<void>((r) => (wake = r));
      }
    },
    async closed(): Promise<number> {
      while (!closedAt) await new Promise<void>((r) => (wake = r));
      return closedAt;
    },
    end() { s.end(); },
  };
}

function config(tag: string) {
  return {
    drainTimeoutMs: 20_000, log: { access: "stdout" },
    listeners: [{ name: "web", listen: "127.0.0.1:0", protocol: "http",
      routes: [{ name: tag, upstreams: [`127.0.0.1:${backend.port}`], headers: { request: { set: { "x-config": tag } } } }] }],
  };
}

test("SIGTERM: idle keep-alive connections close at once, a busy one after its response (Connection: close), then exit 0", async () => {
  const p = await startProxy(["serve", "-c", writeConfig(config("one"))]);
  try {
    const idle = await client(p.port);
    idle.send("/first");
    expect(await idle.response()).toEndWith("\r\n\r\none /first");
    const busy = await client(p.port);
    busy.send("/warm");
    await busy.response();
    busy.send("/slow");
    await Bun.sleep(100); // the request is with the backend
    const signalled = Date.now();
    process.kill(p.pid, "SIGTERM");
    const idleClosed = await idle.closed();
    expect(idleClosed - signalled).toBeLessThan(1200); // before the slow answer (1500 ms after it was asked)
    expect(busy.closedAt).toBe(0);
    const slow = await busy.response();
    expect(slow).toBe("HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\none /slow");
    await busy.closed();
    expect(await p.proc.exited).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(5_000); // not drainTimeoutMs
    const reasons = p.accessLog().map((r) => `${r.path ?? "-"} ${r.reason}`);
    expect(reasons).toEqual(expect.arrayContaining(["/first done", "/warm done", "/slow done"]));
  } finally {
    await p.stop();
  }
});

test("reload: the old configuration's idle connections close, a busy one ends after its response, new requests get the new routes", async () => {
  const file = writeConfig(config("old"));
  const p = await startProxy(["serve", "-c", file]);
  try {
    const idle = await client(p.port);
    idle.send("/a");
    expect(await idle.response()).toEndWith("old /a");
    const busy = await client(p.port);
    busy.send("/slow");
    await Bun.sleep(100);
    writeFileSync(file, JSON.stringify(config("new")));
    process.kill(p.pid, "SIGHUP");
    await p.waitForLog("configuration reloaded");
    await idle.closed();
    expect(busy.closedAt).toBe(0);
    expect(await busy.response()).toBe("HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nold /slow");
    await busy.closed();
    const fresh = await client(p.port);
    fresh.send("/b");
    expect(await fresh.response()).toEndWith("new /b");
    fresh.send("/c"); // a connection of the new configuration stays open
    expect(await fresh.response()).toEndWith("new /c");
    expect(fresh.closedAt).toBe(0);
    fresh.end();
    await eventually(() => p.accessLog().some((r) => r.path === "/c"), 5000, "access log");
  } finally {
    await p.stop();
  }
});
