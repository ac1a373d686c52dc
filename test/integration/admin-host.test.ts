/**
 * The admin API on loopback without a token refuses what a web page in a local browser could send:
 * a foreign Host (DNS rebinding) or a foreign Origin (cross-site POST /reload), with 403 and the reason.
 * curl as an operator runs it (Host 127.0.0.1:PORT or localhost:PORT, no Origin) is served.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startProxy, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { serve, type Server } from "../helpers/peers.ts";

/** curl's status line and body; `headers` are extra -H values. */
async function curl(method: string, url: string, headers: string[] = []): Promise<{ status: number; body: string }> {
  const proc = Bun.spawn(["curl", "-sS", "-X", method, "-w", "\n%{http_code}", ...headers.flatMap((h) => ["-H", h]), url], { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(proc.stdout).text();
  expect(await proc.exited).toBe(0);
  const cut = out.lastIndexOf("\n");
  return { status: Number(out.slice(cut + 1)), body: out.slice(0, cut) };
}

const reloads = (p: RunningProxy) => (p.stderr().match(/POST \/reload: configuration reloaded/g) ?? []).length;

describe("admin API without a token", () => {
  let backend: Server;
  let p: RunningProxy;
  let admin: number;
  let base: string;
  beforeAll(async () => {
    backend = serve({ data() {} } as any);
    const file = writeConfig({
      admin: { listen: "127.0.0.1:0" },
      log: { access: "off" },
      listeners: [{ name: "edge", listen: ["127.0.0.1:0"], routes: [{ upstreams: [`127.0.0.1:${backend.port}`] }] }],
    });
    p = await startProxy(["serve", "-c", file]);
    admin = Number(/admin API listening address=http:\/\/127\.0\.0\.1:(\d+)/.exec(p.stderr())![1]);
    base = `http://127.0.0.1:${admin}`;
  });
  afterAll(async () => {
    await p.stop();
    backend.stop();
  });

  test("curl's own requests are served: Host 127.0.0.1:PORT, localhost:PORT, [::1], same Origin", async () => {
    expect((await curl("GET", `${base}/config`)).status).toBe(200);
    expect((await curl("GET", `${base}/health`, [`Host: localhost:${admin}`])).status).toBe(200);
    expect((await curl("GET", `${base}/health`, ["Host: [::1]:8080"])).status).toBe(200); // a tunnel's port
    const before = reloads(p);
    expect((await curl("POST", `${base}/reload`, [`Origin: http://127.0.0.1:${admin}`])).status).toBe(200);
    expect(reloads(p)).toBe(before + 1);
  });

  test("a foreign Host (DNS rebinding) is refused with 403 and the reason: no config, no reload", async () => {
    const config = await curl("GET", `${base}/config`, [`Host: evil.example:${admin}`]);
    expect(config.status).toBe(403);
    expect(JSON.parse(config.body).error).toBe(`Host evil.example:${admin} is not a loopback name or address (set admin.token to reach the admin API by other names)`);
    expect(config.body).not.toContain("listeners");
    const before = reloads(p);
    expect((await curl("POST", `${base}/reload`, [`Host: evil.example:${admin}`])).status).toBe(403);
    expect((await curl("GET", `${base}/metrics`, ["Host: 127.0.0.1.evil.example"])).status).toBe(403);
    expect(reloads(p)).toBe(before);
  });

  test("a foreign Origin (cross-site POST) is refused with 403 even with a loopback Host", async () => {
    const before = reloads(p);
    const post = await curl("POST", `${base}/reload`, ["Origin: http://evil.example"]);
    expect(post.status).toBe(403);
    expect(JSON.parse(post.body).error).toBe("Origin http://evil.example is not the admin API itself: a web page cannot use it (set admin.token for that)");
    // Another local web app (another port), a sandboxed frame or a file: page, and https to this port.
    for (const origin of ["http://127.0.0.1:3000", "null", `https://127.0.0.1:${admin}`]) {
      expect((await curl("POST", `${base}/reload`, [`Origin: ${origin}`])).status).toBe(403);
    }
    expect(reloads(p)).toBe(before);
  });
});

test("with a token, Host and Origin are not checked: the token decides", async () => {
  const backend = serve({ data() {} } as any);
  const file = writeConfig({
    admin: { listen: "127.0.0.1:0", token: "s3cret" },
    log: { access: "off" },
    listeners: [{ name: "edge", listen: ["127.0.0.1:0"], routes: [{ upstreams: [`127.0.0.1:${backend.port}`] }] }],
  });
  const p = await startProxy(["serve", "-c", file]);
  try {
    const base = `http://127.0.0.1:${/admin API listening address=http:\/\/127\.0\.0\.1:(\d+)/.exec(p.stderr())![1]}`;
    expect((await curl("GET", `${base}/config`, ["Host: switchyard.internal", "Origin: http://dashboard.internal"])).status).toBe(401);
    expect((await curl("GET", `${base}/config`, ["Host: switchyard.internal", "Origin: http://dashboard.internal", "Authorization: Bearer s3cret"])).status).toBe(200);
  } finally {
    await p.stop();
    backend.stop();
  }
});
