/**
 * The resolver module on tls and postgres listeners sees what the sniff stage read: sni, alpn, ja3,
 * ja4 and the first bytes; its answer is passed through (there is no route to say "terminate").
 */
import { expect, test } from "bun:test";
import { writeFileSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { eventually, startProxy, tempDir, writeConfig } from "../helpers/proxy.ts";
import { echoServer } from "../helpers/peers.ts";

test("a tls listener's resolver gets the ClientHello's facts and its answer is passed through", async () => {
  const dir = tempDir();
  const seen = join(dir, "ctx.json");
  const echo = echoServer();
  const resolver = join(dir, "resolver.ts");
  writeFileSync(resolver, `
    import { writeFileSync } from "node:fs";
    export default {
      resolve(ctx) {
        writeFileSync(${JSON.stringify(seen)}, JSON.stringify({ ...ctx, data: ctx.data ? ctx.data.length : null }));
        return { endpoint: "127.0.0.1:${echo.port}" };
      },
    };`);
  const p = await startProxy(["serve", "--resolver", resolver, "-c", writeConfig({
    listeners: [{ name: "edge", listen: "127.0.0.1:0", protocol: "tls", routes: [{ upstreams: ["127.0.0.1:1"] }] }],
  })]);
  try {
    // The echo upstream sends the hello back: openssl sees its own hello where a ServerHello should be and gives up; the routing is what is tested.
    const c = Bun.spawn(["openssl", "s_client", "-connect", `127.0.0.1:${p.port}`, "-servername", "tenant-a.example.net", "-alpn", "h2"], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    const timer = setTimeout(() => c.kill("SIGKILL"), 10_000);
    await c.exited;
    clearTimeout(timer);
    await eventually(() => existsSync(seen), 10_000, "resolver call");
    const ctx = JSON.parse(readFileSync(seen, "utf8"));
    expect(ctx).toMatchObject({ listener: "edge", sni: "tenant-a.example.net", alpn: "h2", clientCert: null, database: null });
    expect(ctx.ja3).toMatch(/^[0-9a-f]{32}$/);
    expect(ctx.ja4).toMatch(/^t13d\d{4}h2_[0-9a-f]{12}_[0-9a-f]{12}$/);
    expect(ctx.data).toBeGreaterThan(100);
    await eventually(() => p.accessLog().length > 0, 10_000, "access log");
    expect(p.accessLog()[0]).toMatchObject({ route: null, upstream: `127.0.0.1:${echo.port}`, tls: "passthrough", sni: "tenant-a.example.net" });
  } finally {
    await p.stop();
    echo.stop();
  }
});
