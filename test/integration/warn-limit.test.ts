/**
 * Repeated warnings are rate-limited (src/log/repeat-limit.ts): a burst of malformed hellos, each of
 * which writes a `connection closed: malformed_hello` warning, leaves ten lines per window and one
 * summary that counts the rest.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { eventually, startProxy, writeConfig, type RunningProxy } from "../helpers/proxy.ts";

let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startProxy(["serve", "-c", writeConfig({
    listeners: [{ name: "edge", listen: "127.0.0.1:0", protocol: "tls", routes: [{ name: "r", upstreams: ["127.0.0.1:9"] }] }],
  })]);
});

afterAll(async () => {
  await proxy?.stop();
});

/** One connection that sends a handshake record that is not a ClientHello, until the proxy closes it. */
function malformed(): Promise<void> {
  return new Promise((resolve) => {
    Bun.connect({ hostname: "127.0.0.1", port: proxy.port, socket: {
      open(s) { s.write(new Uint8Array([22, 3, 1, 0, 4, 2, 0, 0, 0])); },
      data() {}, close() { resolve(); }, connectError() { resolve(); },
    } });
  });
}

test("200 malformed hellos: at most 10 warning lines per 10 s window, and summaries account for every other one", async () => {
  const total = 200;
  for (let i = 0; i < total; i += 20) await Promise.all(Array.from({ length: 20 }, malformed));
  const written = () => proxy.stderr().split("\n").filter((l) => l.includes("WARN  connection closed: malformed_hello")).length;
  const suppressed = () => [...proxy.stderr().matchAll(/suppressed (\d+) similar warnings: connection closed: malformed_hello/g)].reduce((n, m) => n + Number(m[1]), 0);
  // The summary comes when its window ends, 10 s after the first line.
  await eventually(() => written() + suppressed() === total, 30_000, "a summary of the suppressed warnings");
  const summaries = proxy.stderr().split("\n").filter((l) => l.includes("similar warnings")).length;
  expect(summaries).toBeGreaterThanOrEqual(1);
  expect(written()).toBeLessThanOrEqual(10 * summaries);
}, 60_000);
