/**
 * Binary upgrade of a single process (workers 1): SIGUSR2 starts the binary now at the same path with
 * the listening sockets inherited; the old process drains and exits 0; a steady load of new
 * connections sees no refused or reset connection. (With workers: test/integration/workers.test.ts.)
 */
import { expect, test } from "bun:test";
import { copyFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { BINARY, eventually, startProxy, tempDir, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { echoServer } from "../helpers/peers.ts";
import { steadyLoad } from "../helpers/load.ts";

test("upgrade: one process hands its sockets to the new binary; no connection fails", async () => {
  const echo = echoServer();
  const dir = tempDir();
  const binary = join(dir, "switchyard");
  copyFileSync(BINARY, binary);
  const file = writeConfig({
    admin: { listen: "127.0.0.1:0" }, log: { access: "off" },
    listeners: [{ name: "echo", listen: ["127.0.0.1:0"], routes: [{ upstreams: [`127.0.0.1:${echo.port}`] }] }],
  }, dir);
  let p: RunningProxy | null = null;
  let upgraded = 0;
  try {
    p = await startProxy(["serve", "-c", file], { binary });
    const load = steadyLoad(p.port, 4);
    await eventually(() => load.ok() > 50, 20_000, "connections");
    copyFileSync(BINARY, join(dir, "switchyard.new"));
    renameSync(join(dir, "switchyard.new"), binary);
    process.kill(p.pid, "SIGUSR2");
    await p.waitForLog("upgrade: the new binary is serving", 30_000);
    upgraded = Number([...p.stderr().matchAll(/switchyard ready .* pid=(\d+)/g)].at(-1)![1]);
    expect(upgraded).not.toBe(p.pid);
    expect(p.stderr()).toContain("origin=upgrade");
    expect(await p.proc.exited).toBe(0);
    const mark = load.ok();
    await eventually(() => load.ok() > mark + 50, 20_000, "connections served by the new process");
    const { failures } = await load.stop();
    expect(failures).toEqual([]);
  } finally {
    if (upgraded > 0) {
      process.kill(upgraded, "SIGTERM");
      await eventually(() => { try { process.kill(upgraded, 0); return false; } catch { return true; } }, 15_000, "the new process to stop")
        .catch(() => process.kill(upgraded, "SIGKILL"));
    }
    await p?.stop();
    echo.stop();
  }
}, 60_000);
