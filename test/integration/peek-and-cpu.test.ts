/**
 * peek (src/native/peek.ts) against real loopback sockets, and the least-cpu balancer through the
 * compiled binary against two real upstream processes, one of which keeps a core busy.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import type { Socket } from "bun";
import { peek } from "../../src/native/peek.ts";
import { startProxy, eventually, tempDir, writeConfig } from "../helpers/proxy.ts";
import { connect } from "../helpers/peers.ts";

test("peek: the first bytes of a paused connection, left for the next read; nothing-yet before they come", async () => {
  let fd = -1;
  let got = "";
  let server!: Socket<any>;
  const listener = Bun.listen({
    hostname: "127.0.0.1", port: 0,
    socket: {
      open(s: Socket<any>) { s.pause(); server = s; fd = (s as unknown as { fd: number }).fd; },
      data(_s: Socket<any>, d: Uint8Array) { got += new TextDecoder().decode(d); },
    },
  } as any);
  try {
    const c = await connect(listener.port);
    await eventually(() => fd >= 0, 5_000, "accept");
    expect(peek(fd, 16)).toEqual({ kind: "nothing-yet" });
    c.socket.write("\x16\x03\x01 a ClientHello");
    await eventually(() => peek(fd, 64).kind === "bytes", 5_000, "bytes to arrive");
    const first = peek(fd, 3);
    expect(first.kind === "bytes" && Array.from(first.bytes)).toEqual([0x16, 0x03, 0x01]);
    const all = peek(fd, 64);
    expect(all.kind === "bytes" && new TextDecoder().decode(all.bytes)).toBe("\x16\x03\x01 a ClientHello");
    server.resume();
    await eventually(() => got.length === 17, 5_000, "the read after the peek");
    expect(got).toBe("\x16\x03\x01 a ClientHello"); // nothing was consumed by peeking
    expect(peek(-1, 4)).toEqual({ kind: "error", code: "EBADF" });
    c.socket.end();
  } finally {
    listener.stop(true);
  }
});

/** A unix socket that answers `name` to every connection, served by this test process. */
function answering(path: string, name: string) {
  return Bun.listen({ unix: path, socket: { open(s: Socket<any>) { s.write(name); s.end(); }, data() {} } } as any);
}

test("least-cpu: new connections go to the upstream whose thread is idle, not the busy one", async () => {
  const dir = tempDir();
  // Two upstream "workers": the threads sampled are a process spinning a core and one sleeping.
  const busy = Bun.spawn(["/usr/bin/python3", "-c", "while True: pass"]);
  const idle = Bun.spawn(["/usr/bin/python3", "-c", "import time\nwhile True: time.sleep(1)"]);
  const servers = [answering(join(dir, "busy.sock"), "busy"), answering(join(dir, "idle.sock"), "idle")];
  try {
    const config = writeConfig({
      listeners: [{
        name: "w", listen: ["127.0.0.1:0"],
        routes: [{
          balance: "least-cpu",
          // The main thread of a one-thread process: its tid is its pid.
          upstreams: [{ unix: join(dir, "busy.sock"), pid: busy.pid, tid: busy.pid }, { unix: join(dir, "idle.sock"), pid: idle.pid, tid: idle.pid }],
        }],
      }],
    });
    const proxy = await startProxy(["serve", "-c", config]);
    try {
      // Two samples (250 ms apart) are needed before a share is known; until then least-conn decides.
      await Bun.sleep(1000);
      for (let i = 0; i < 6; i++) {
        const c = await connect(proxy.port);
        await c.closed;
        await eventually(() => proxy.accessLog().length === i + 1, 5_000, "record"); // released
      }
      // Which upstream each connection was given. (Only the first dial of a unix path succeeds in
      // this run, with relay userspace too: a separate issue of unix upstreams, not of balancing.)
      const picked = proxy.accessLog().map((r) => String(r.upstream).slice(String(r.upstream).lastIndexOf("/") + 1));
      expect(picked).toEqual(["idle.sock", "idle.sock", "idle.sock", "idle.sock", "idle.sock", "idle.sock"]);
    } finally {
      await proxy.stop();
    }
  } finally {
    busy.kill();
    idle.kill();
    for (const s of servers) s.stop(true);
  }
}, 30_000);
