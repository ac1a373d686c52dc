/**
 * The per-request cost the http listener's hot path is built around, counted with strace: a small
 * keep-alive GET answered by nginx in one segment costs the proxy one receive and one send per
 * direction. The response head and the body bytes that came with it leave in one send (session.ts
 * stageClient), as HAProxy does; before that it took three sends per request, and on loopback a send
 * costs about as much as all the rest of a small request's work (bench/results/2026-12-03-http.md).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Socket } from "bun";
import { startProxy, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { startNginx, type Nginx } from "../helpers/nginx.ts";
import { countDataSyscalls } from "../helpers/syscalls.ts";

let nginx: Nginx;
let proxy: RunningProxy;

beforeAll(async () => {
  // `return` answers with one writev: head and body in one segment.
  nginx = await startNginx("sys", `location = /small { return 200 "${"s".repeat(99)}\\n"; }`);
  const config = writeConfig({
    log: { access: "off" },
    listeners: [{ name: "web", listen: "127.0.0.1:0", protocol: "http", routes: [{ upstreams: [`127.0.0.1:${nginx.port}`] }] }],
  });
  proxy = await startProxy(["serve", "-c", config]);
});

afterAll(async () => {
  await proxy?.stop();
  await nginx?.stop();
});

/** `n` GETs one after the other on one keep-alive connection; resolves with the responses' total size. */
async function sequentialGets(port: number, n: number): Promise<number> {
  const request = new TextEncoder().encode(`GET /small HTTP/1.1\r\nHost: sys.test\r\n\r\n`);
  let left = n, got = "", total = 0;
  return new Promise((resolve, reject) => {
    Bun.connect({
      hostname: "127.0.0.1", port,
      socket: {
        open(s: Socket) { s.write(request); },
        data(s: Socket, chunk: Uint8Array) {
          got += Buffer.from(chunk).toString("latin1");
          const end = got.indexOf("\r\n\r\n");
          if (end < 0 || got.length < end + 4 + 100) return; // the body is 100 bytes
          total += got.length;
          got = "";
          if (--left === 0) { s.end(); resolve(total); } else s.write(request);
        },
        close() { if (left > 0) reject(new Error(`closed with ${left} requests left`)); },
        error(_s: Socket, e: Error) { reject(e); },
      },
    }).catch(reject);
  });
}

test("a small keep-alive GET costs the proxy one send per direction", async () => {
  const port = Number(proxy.addresses[0]!.split(":").pop());
  await sequentialGets(port, 20); // the pooled upstream connection exists, the code is warm
  const watch = countDataSyscalls(proxy.pid);
  await Bun.sleep(500); // strace attached
  const n = 300;
  const bytes = await sequentialGets(port, n);
  await Bun.sleep(100);
  const calls = await watch.stop();
  const sends = (calls.byName.sendto ?? 0) + (calls.byName.write ?? 0) + (calls.byName.writev ?? 0) + (calls.byName.sendmsg ?? 0);
  const receives = (calls.byName.recvfrom ?? 0) + (calls.byName.read ?? 0) + (calls.byName.recvmsg ?? 0);
  console.log(`${n} requests (${bytes} B of responses): ${sends} sends, ${receives} receives`);
  expect(bytes).toBeGreaterThan(n * 100);
  // Two per request (upstream, client); a few to spare for the connection's open and close.
  expect(sends).toBeLessThanOrEqual(2 * n + 6);
  expect(sends).toBeGreaterThanOrEqual(2 * n);
}, 60_000);
