/**
 * A start that cannot work is refused before anything is bound, with the address and, where it can
 * be seen, who holds it: a listen address another instance serves (unless both opt in with
 * reusePort), an admin address in use, a non-loopback admin address without a token, a wildcard
 * beside a specific address on one port.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { runBinary, startProxy, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { echoServer, serve, type Server } from "../helpers/peers.ts";

let echo: Server;
beforeAll(() => { echo = echoServer(); });
afterAll(() => echo?.stop());

const listenerOn = (listen: string, extra: Record<string, unknown> = {}) =>
  ({ name: "t", listen: [listen], routes: [{ upstreams: [`127.0.0.1:${echo.port}`] }], ...extra });

/** Exit code and stderr of a `serve` that is expected to refuse to start (killed if it does start). */
async function refusedServe(config: unknown, args: string[] = []) {
  return runBinary(["serve", ...args, "-c", writeConfig(config)]);
}

describe("a listen address another instance serves", () => {
  for (const [first, second] of [[[], []], [[], ["--workers", "2"]], [["--workers", "2"], []]] as const) {
    test(`${first.length ? "workers" : "one process"} holds it, ${second.length ? "workers" : "one process"} is refused and told who holds it`, async () => {
      const holder = await startProxy(["serve", ...first, "-c", writeConfig({ listeners: [listenerOn("127.0.0.1:0")] })]);
      try {
        const r = await refusedServe({ listeners: [listenerOn(`127.0.0.1:${holder.port}`)] }, [...second]);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`cannot listen on 127.0.0.1:${holder.port}: address already in use (held by pid ${holder.pid} (switchyard)`);
        expect(r.stderr).not.toContain("switchyard ready");
      } finally {
        await holder.stop();
      }
    }, 60_000);
  }

  test("with reusePort on both, the second starts beside the first", async () => {
    const first = await startProxy(["serve", "-c", writeConfig({ listeners: [listenerOn("127.0.0.1:0", { reusePort: true })] })]);
    let second: RunningProxy | null = null;
    try {
      second = await startProxy(["serve", "--workers", "2", "-c", writeConfig({ listeners: [listenerOn(`127.0.0.1:${first.port}`, { reusePort: true })] })]);
      expect(second.addresses).toEqual([`127.0.0.1:${first.port}`]);
    } finally {
      await second?.stop();
      await first.stop();
    }
  }, 60_000);

  test("reusePort on the second only is still refused", async () => {
    const first = await startProxy(["serve", "-c", writeConfig({ listeners: [listenerOn("127.0.0.1:0")] })]);
    try {
      const r = await refusedServe({ listeners: [listenerOn(`127.0.0.1:${first.port}`, { reusePort: true })] });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("address already in use");
    } finally {
      await first.stop();
    }
  });
});

describe("the admin address", () => {
  test("in use: the error names the admin address and its holder, and no listener was bound first", async () => {
    const taken = serve({ data() {} } as any);
    try {
      for (const args of [[], ["--workers", "2"]]) {
        const r = await refusedServe({ admin: { listen: `127.0.0.1:${taken.port}` }, listeners: [listenerOn("127.0.0.1:0")] }, args);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`cannot listen on admin address 127.0.0.1:${taken.port}: address already in use (held by pid ${process.pid}`);
        expect(r.stderr).not.toMatch(/INFO\s+listening address=/);
      }
    } finally {
      taken.stop();
    }
  }, 60_000);

  test("not loopback and no token: validate and serve refuse it alike, before binding anything", async () => {
    const path = writeConfig({ admin: { listen: "0.0.0.0:0" }, listeners: [listenerOn("127.0.0.1:0")] });
    const message = 'admin API on 0.0.0.0:0 is not loopback: set admin.token';
    const validate = await runBinary(["validate", "-c", path]);
    expect(validate.code).toBe(1);
    expect(validate.stderr).toContain(`${path}:`);
    expect(validate.stderr).toContain(message);
    const served = await runBinary(["serve", "-c", path]);
    expect(served.code).toBe(1);
    expect(served.stderr).toContain(message);
    expect(served.stderr).not.toMatch(/listening address=/);
  });
});

test("validate refuses a wildcard beside a specific address on the same port", async () => {
  const path = writeConfig({
    listeners: [listenerOn("0.0.0.0:7400"), { ...listenerOn("127.0.0.1:7400"), name: "local" }],
  });
  const r = await runBinary(["validate", "-c", path]);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('listen address 127.0.0.1:7400 overlaps 0.0.0.0:7400 of listener "t"');
});
