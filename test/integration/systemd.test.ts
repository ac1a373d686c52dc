/**
 * systemd without systemd: test/helpers/systemd-harness.py makes the notify socket and a listening
 * socket at fd 3 as systemd does for a Type=notify unit with socket activation, and reports every
 * datagram. Checks READY=1, RELOADING=1 with MONOTONIC_USEC then READY=1 on SIGHUP, WATCHDOG=1,
 * STOPPING=1 on SIGTERM and exit 0, that the inherited socket is the one served, and that a binary
 * upgrade hands it to a new process that says MAINPID= (the old one exits 0 without STOPPING=1).
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { BINARY, eventually, tempDir, writeConfig } from "../helpers/proxy.ts";
import { echoServer } from "../helpers/peers.ts";
import { steadyLoad } from "../helpers/load.ts";

const HARNESS = join(import.meta.dir, "../helpers/systemd-harness.py");

async function underSystemd(workers: number) {
  const echo = echoServer();
  const file = writeConfig({
    workers,
    log: { access: "off" },
    // Port 0 here: the listener's socket is the one systemd passes (named "edge" like the listener).
    listeners: [{ name: "edge", listen: ["127.0.0.1:0"], routes: [{ upstreams: [`127.0.0.1:${echo.port}`] }] }],
  }, tempDir());
  const proc = Bun.spawn(["/usr/bin/python3", HARNESS, "edge", "400000", BINARY, "serve", "-c", file], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, stdout: "pipe", stderr: "pipe",
  });
  const lines: Record<string, unknown>[] = [];
  let err = "";
  void (async () => {
    let buf = "";
    for await (const c of proc.stdout as ReadableStream<Uint8Array>) {
      buf += new TextDecoder().decode(c);
      const cut = buf.lastIndexOf("\n");
      if (cut < 0) continue;
      for (const l of buf.slice(0, cut).split("\n")) lines.push(JSON.parse(l));
      buf = buf.slice(cut + 1);
    }
  })();
  void (async () => { for await (const c of proc.stderr as ReadableStream<Uint8Array>) err += new TextDecoder().decode(c); })();
  const notes = () => lines.filter((l) => "notify" in l).map((l) => String(l.notify));
  try {
    await eventually(() => lines.length > 0, 10_000, "the harness to start");
    const { pid, port } = lines[0] as { pid: number; port: number };
    await eventually(() => notes().includes("READY=1"), 20_000, "READY=1");
    expect(err).toContain("origin=systemd");
    const load = steadyLoad(port, 2);
    await eventually(() => load.ok() >= 20, 20_000, "connections through the inherited socket");

    await eventually(() => notes().includes("WATCHDOG=1"), 10_000, "a watchdog ping (every 200 ms)");
    process.kill(pid, "SIGHUP");
    await eventually(() => notes().filter((n) => n === "READY=1").length === 2, 20_000, "READY=1 after the reload");
    const reloading = notes().find((n) => n.startsWith("RELOADING=1"));
    expect(reloading).toMatch(/^RELOADING=1\nMONOTONIC_USEC=\d+$/);
    // MONOTONIC_USEC is CLOCK_MONOTONIC, which counts from boot: compare with /proc/uptime.
    const usec = Number(/MONOTONIC_USEC=(\d+)/.exec(reloading!)![1]);
    const uptime = Number((await Bun.file("/proc/uptime").text()).split(" ")[0]) * 1e6;
    expect(Math.abs(uptime - usec)).toBeLessThan(120e6);

    // Nothing but the main process notifies: no worker sent READY=1 of its own.
    expect(notes().filter((n) => n === "READY=1").length).toBe(2);

    // Binary upgrade: the new process takes the socket systemd passed and becomes MAINPID; the old
    // one exits 0 without STOPPING=1 (systemd would think the service is stopping).
    process.kill(pid, "SIGUSR2");
    await eventually(() => notes().some((n) => n.startsWith("MAINPID=")), 30_000, "MAINPID= from the new process");
    const mainpid = Number(/^MAINPID=(\d+)\nREADY=1$/.exec(notes().find((n) => n.startsWith("MAINPID="))!)![1]);
    expect(mainpid).not.toBe(pid);
    await eventually(() => lines.some((l) => "exit" in l), 30_000, "the old process to exit");
    expect(lines.find((l) => "exit" in l)).toEqual({ exit: 0 });
    expect(notes()).not.toContain("STOPPING=1");
    const after = load.ok();
    await eventually(() => load.ok() >= after + 20, 20_000, "connections served by the new process");
    const { failures } = await load.stop();
    expect(failures, `the proxy's log:\n${err}`).toEqual([]);

    process.kill(mainpid, "SIGTERM");
    await eventually(() => notes().includes("STOPPING=1"), 30_000, "STOPPING=1 from the new main process");
    await eventually(() => { try { process.kill(mainpid, 0); return false; } catch { return true; } }, 30_000, "the new main process to exit");
  } finally {
    const first = lines[0] as { pid?: number } | undefined;
    const main = notes().find((n) => n.startsWith("MAINPID="));
    for (const pid of [first?.pid, main ? Number(/\d+/.exec(main)![0]) : 0]) if (pid) { try { process.kill(pid, "SIGKILL"); } catch {} }
    proc.kill();
    await proc.exited;
    echo.stop();
  }
}

test("systemd: Type=notify and socket activation, one process", () => underSystemd(1), 60_000);
test("systemd: Type=notify and socket activation, a supervisor and 2 workers", () => underSystemd(2), 60_000);
