/**
 * Responses as the http listener relays them, from a scripted raw backend (a Bun socket server that
 * writes exact bytes per path): 100 Continue and 103 Early Hints relayed before the final answer, a
 * chunked body with trailers relayed whole, a close-delimited body ending the client connection, a
 * response Content-Length beside Transfer-Encoding dropped, and a malformed response turned into 502.
 * The client is a raw socket, so the bytes it gets are seen exactly.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Socket } from "bun";
import { eventually, startProxy, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { serve, type Server } from "../helpers/peers.ts";

const dec = new TextDecoder();
let backend: Server;
let proxy: RunningProxy;
const requestsSeen: string[] = [];

const SCRIPT: Record<string, string> = {
  "/early": "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
  "/trailers": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: abc\r\n\r\n",
  "/close": "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nbody until close",
  "/cl-te": "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
  "/bad-cl": "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
  "/bare-lf": "HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\nok",
};

beforeAll(async () => {
  backend = serve({
    open(s: Socket<any>) { s.data = { buf: "", waitBody: 0 }; },
    data(s: Socket<any>, d: Uint8Array) {
      const st = s.data;
      st.buf += dec.decode(d);
      for (;;) {
        if (st.waitBody > 0) {
          if (st.buf.length < st.waitBody) return;
          requestsSeen.push("body:" + st.buf.slice(0, st.waitBody));
          st.buf = st.buf.slice(st.waitBody);
          st.waitBody = 0;
          s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
          continue;
        }
        const end = st.buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = st.buf.slice(0, end + 4);
        st.buf = st.buf.slice(end + 4);
        requestsSeen.push(head);
        const path = head.split(" ")[1]!;
        if (path === "/continue") {
          s.write("HTTP/1.1 100 Continue\r\n\r\n");
          st.waitBody = Number(/content-length: (\d+)/i.exec(head)![1]);
          continue;
        }
        s.write(SCRIPT[path] ?? "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        if (path === "/close") s.end();
      }
    },
  } as any);
  const config = writeConfig({
    log: { access: "stdout" },
    listeners: [{ name: "web", listen: "127.0.0.1:0", protocol: "http", routes: [{ name: "raw", upstreams: [`127.0.0.1:${backend.port}`] }] }],
  });
  proxy = await startProxy(["serve", "-c", config]);
});

afterAll(async () => {
  await proxy?.stop();
  backend?.stop();
});

/** Send `request` on a new connection; the text received once `done` says so (or the connection closed). */
async function exchange(request: string, done: (text: string) => boolean, thenSend?: string): Promise<{ text: string; closed: boolean }> {
  let text = "";
  let closed = false;
  const s = await Bun.connect({ hostname: "127.0.0.1", port: proxy.port, socket: { data(_s, d) { text += dec.decode(d); }, close() { closed = true; } } });
  s.write(request);
  if (thenSend !== undefined) {
    await eventually(() => text.includes("100 Continue"), 5000, "100 Continue");
    s.write(thenSend);
  }
  await eventually(() => done(text) || closed, 5000, "the answer");
  await Bun.sleep(30);
  const wasClosed = closed; // before our own end
  s.end();
  return { text, closed: wasClosed };
}

test("100 Continue is relayed, then the body goes up and the final answer comes back", async () => {
  const r = await exchange("POST /continue HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", (t) => t.endsWith("ok"), "hello");
  expect(r.text).toStartWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n");
  expect(requestsSeen).toContain("body:hello");
});

test("103 Early Hints is relayed before the final answer", async () => {
  const r = await exchange("GET /early HTTP/1.1\r\nHost: x\r\n\r\n", (t) => t.endsWith("ok"));
  expect(r.text).toBe("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
});

test("a chunked body with trailers is relayed whole; the connection stays open", async () => {
  const r = await exchange("GET /trailers HTTP/1.1\r\nHost: x\r\n\r\n", (t) => t.endsWith("\r\n0\r\nX-Sum: abc\r\n\r\n"));
  // Trailer (the field announcing trailers) is hop-by-hop; the chunks and the trailer section pass as received.
  expect(r.text).toBe("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: abc\r\n\r\n");
  expect(r.closed).toBe(false);
});

test("a body delimited by the upstream's close ends the client connection after it, said with Connection: close", async () => {
  const r = await exchange("GET /close HTTP/1.1\r\nHost: x\r\n\r\n", () => false);
  expect(r.closed).toBe(true);
  expect(r.text).toBe("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nbody until close");
});

test("a response's Content-Length beside Transfer-Encoding is dropped (RFC 9112 §6.3 ¶3), the chunked body relayed", async () => {
  const r = await exchange("GET /cl-te HTTP/1.1\r\nHost: x\r\n\r\n", (t) => t.endsWith("0\r\n\r\n"));
  expect(r.text).toBe("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
});

test.each([["/bad-cl", "conflicting_content_length"], ["/bare-lf", "bare_lf"]])("a malformed response (%s) becomes 502 naming the reason", async (path, reason) => {
  const r = await exchange(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, () => false);
  expect(r.closed).toBe(true);
  expect(r.text).toStartWith("HTTP/1.1 502 Bad Gateway\r\n");
  expect(r.text).toContain(`bad_response_${reason}`);
  await eventually(() => proxy.accessLog().some((x) => x.path === path && x.status === 502 && x.reason === `bad_response_${reason}`), 5000, "the record");
});
