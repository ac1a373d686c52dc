/**
 * The options of the listening sockets, read back from the kernel (test/helpers/listen-options.py
 * borrows them with pidfd_getfd): one process makes them natively like the supervisor does
 * (backlog 4096, IPV6_V6ONLY, TCP_FASTOPEN, TCP_DEFER_ACCEPT on client-first protocols only;
 * SO_REUSEPORT only for the supervisor's socket per worker), and Bun binds them without the library. Plus what deferring must not break: a server-first
 * backend's greeting reaches a client that has said nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { startProxy, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { connect, echoServer, serve, type Server } from "../helpers/peers.ts";

const ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
const OPTIONS = join(import.meta.dir, "../helpers/listen-options.py");

/** A listening socket's options as the kernel has them; TCP_DEFER_ACCEPT reads back rounded up (10 s → 15). */
interface ListenOptions { family: 4 | 6; deferAccept: "on" | "off"; reusePort: number; fastOpen: number; v6only: number | null; backlog: number }

const portOf = (address: string) => address.slice(address.lastIndexOf(":") + 1);

/** Every listening socket process `pid` holds on `address`'s port. */
function optionsOf(pid: number, address: string): ListenOptions[] {
  const r = Bun.spawnSync(["/usr/bin/python3", OPTIONS, String(pid), portOf(address)], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`listen-options.py: ${r.stderr.toString()}`);
  const backlogs = backlogsOf(address);
  return (JSON.parse(r.stdout.toString()) as (Omit<ListenOptions, "deferAccept" | "backlog"> & { deferAccept: number })[])
    .map((o, i) => ({ ...o, deferAccept: o.deferAccept > 0 ? "on" : "off", backlog: backlogs[i] ?? -1 }));
}

/**
 * What a natively made socket has: TCP_FASTOPEN with a queue of the backlog, backlog 4096, and
 * SO_REUSEPORT only when `shared` (a socket per worker): otherwise a second instance could join it.
 */
function made(deferAccept: "on" | "off", family: 4 | 6 = 4, shared = false): ListenOptions {
  return { family, deferAccept, reusePort: shared ? 1 : 0, fastOpen: 4096, v6only: family === 6 ? 1 : null, backlog: 4096 };
}

/** The accept queue length of each listening socket on `address`'s port (ss shows it as Send-Q). */
function backlogsOf(address: string): number[] {
  const out = Bun.spawnSync(["ss", "-ltnH", `sport = :${portOf(address)}`], { stdout: "pipe" }).stdout.toString().trim();
  return out.split("\n").map((line) => Number(line.trim().split(/\s+/)[2]));
}

let echo: Server;
let greeter: Server;
/** Listeners tls, postgres and tcp (IPv4, and IPv6 to a server-first backend), in that listen order. */
let config: string;

beforeAll(() => {
  echo = echoServer();
  // Server-first, like SMTP or MySQL: it greets before the client says anything.
  greeter = serve({ open(s: any) { s.write("220 greetings\r\n"); }, data() {} } as any);
  config = writeConfig({
    listeners: [
      { name: "tls", listen: "127.0.0.1:0", protocol: "tls", routes: [{ upstreams: [`127.0.0.1:${echo.port}`] }] },
      { name: "pg", listen: "127.0.0.1:0", protocol: "postgres", routes: [{ upstreams: [`127.0.0.1:${echo.port}`] }] },
      { name: "tcp", listen: ["127.0.0.1:0", "[::1]:0"], routes: [{ upstreams: [`127.0.0.1:${greeter.port}`] }] },
    ],
  });
});

afterAll(() => {
  echo?.stop();
  greeter?.stop();
});

describe("one process with the native library", () => {
  let proxy: RunningProxy;
  beforeAll(async () => {
    proxy = await startProxy(["serve", "-c", config], { env: ENV });
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  test("tls and postgres sockets defer accept, tcp ones do not; all have TCP_FASTOPEN and backlog 4096, none SO_REUSEPORT", () => {
    const [tls, pg, tcp4, tcp6] = proxy.addresses;
    expect(optionsOf(proxy.pid, tls!)).toEqual([made("on")]);
    expect(optionsOf(proxy.pid, pg!)).toEqual([made("on")]);
    expect(optionsOf(proxy.pid, tcp4!)).toEqual([made("off")]);
    expect(optionsOf(proxy.pid, tcp6!)).toEqual([made("off", 6)]);
    expect(proxy.stderr()).not.toContain("listening sockets bound by Bun");
  });

  test("a client of a server-first backend that says nothing still gets the greeting (no deferred accept on tcp)", async () => {
    const c = await connect(Number(proxy.addresses[2]!.split(":").pop()));
    try {
      // Deferred, the connection would wait in the kernel for 10 s and more before the proxy dialled.
      const deadline = Date.now() + 5_000;
      while (!c.receivedText().includes("220 greetings") && Date.now() < deadline) await Bun.sleep(20);
      expect(c.receivedText()).toBe("220 greetings\r\n");
    } finally {
      c.socket.end();
    }
  });
});

test("with 2 workers the supervisor's sockets carry the same options, one per worker, with SO_REUSEPORT", async () => {
  const proxy = await startProxy(["serve", "-c", config, "--workers", "2"], { env: ENV });
  try {
    const [tls, , tcp4] = proxy.addresses;
    expect(optionsOf(proxy.pid, tls!)).toEqual([made("on", 4, true), made("on", 4, true)]);
    expect(optionsOf(proxy.pid, tcp4!)).toEqual([made("off", 4, true), made("off", 4, true)]);
  } finally {
    await proxy.stop();
  }
}, 60_000);

test("without the library Bun binds: no TCP_DEFER_ACCEPT, and the log says so once", async () => {
  const proxy = await startProxy(["serve", "-c", config], { env: { ...ENV, SWITCHYARD_NATIVE: "off" } });
  try {
    expect(optionsOf(proxy.pid, proxy.addresses[0]!).map((o) => o.deferAccept)).toEqual(["off"]);
    expect(proxy.stderr().split("listening sockets bound by Bun, without TCP_DEFER_ACCEPT or TCP_FASTOPEN").length - 1).toBe(1);
  } finally {
    await proxy.stop();
  }
});
