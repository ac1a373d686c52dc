/**
 * Route `headers` edits, the listener's `http.via` and `http.notFound`, by the exact bytes: what an
 * echo backend (test/helpers/http-echo.ts) received for each request, and what the raw client got
 * back. The edits are made while the head is re-serialised (src/http/header-edits.ts, serialize.ts).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startProxy, writeConfig, type RunningProxy } from "../helpers/proxy.ts";
import { startEchoBackend, type EchoBackend } from "../helpers/http-echo.ts";

let echo: EchoBackend;
let proxy: RunningProxy;
let plainPort: number;

beforeAll(async () => {
  echo = startEchoBackend({ answer: (r) => `ok ${r.head.split(" ")[1]}` });
  proxy = await startProxy(["serve", "-c", writeConfig({
    listeners: [
      { name: "edge", listen: "127.0.0.1:0", protocol: "http",
        http: { via: "edge-1", notFound: { contentType: "text/html", body: "<h1>nothing at {host}{path}</h1>" } },
        routes: [
          { name: "edited", match: { host: "h.test" }, upstreams: [`127.0.0.1:${echo.port}`],
            headers: { request: { set: { "x-env": "prod", "X-Forwarded-Proto": "https" }, remove: ["x-debug", "Cookie"] },
                       response: { set: { "x-served-by": "edge" }, remove: ["X-Backend"] } } },
          { name: "via-only", match: { host: "v.test" }, upstreams: [`127.0.0.1:${echo.port}`] },
        ] },
      { name: "plain", listen: "127.0.0.1:0", protocol: "http", http: { notFound: "gone fishing: {path}\n" },
        routes: [{ match: { host: "h.test" }, upstreams: [`127.0.0.1:${echo.port}`] }] },
    ],
  })]);
  plainPort = Number(proxy.addresses[1]!.split(":").at(-1));
});

afterAll(async () => {
  await proxy?.stop();
  echo?.stop();
});

/** Send `bytes`, collect everything until the proxy closes (the requests end with Connection: close). */
async function raw(port: number, bytes: string): Promise<string> {
  let got = "";
  const done = Promise.withResolvers<string>();
  const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: {
    data(_s, d) { got += Buffer.from(d).toString("latin1"); },
    close() { done.resolve(got); },
  } });
  s.write(bytes);
  return done.promise;
}

test("request: the route's set replaces and adds, remove leaves out, Via is appended; exact bytes at the backend", async () => {
  echo.received.length = 0;
  const answer = await raw(proxy.port,
    "GET /a?q=1 HTTP/1.1\r\nHost: h.test\r\nX-Debug: 1\r\nX-Env: dev\r\nCOOKIE: a=b\r\nAccept: */*\r\nVia: 1.1 cdn\r\nX-Forwarded-Proto: http\r\n\r\n" +
    "GET /b HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n");
  expect(echo.received.map((r) => r.head)).toEqual([
    "GET /a?q=1 HTTP/1.1\r\nHost: h.test\r\nAccept: */*\r\nVia: 1.1 cdn\r\n" +
      "X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Host: h.test\r\nx-env: prod\r\nX-Forwarded-Proto: https\r\nVia: 1.1 edge-1\r\n\r\n",
    "GET /b HTTP/1.1\r\nHost: h.test\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Host: h.test\r\nx-env: prod\r\nX-Forwarded-Proto: https\r\nVia: 1.1 edge-1\r\n\r\n",
  ]);
  // response: X-Backend removed, x-served-by set (set fields first), then the added ones: Connection: close on the last, Via.
  expect(answer).toBe(
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\nx-served-by: edge\r\nVia: 1.1 edge-1\r\n\r\nok /a?q=1" +
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\nx-served-by: edge\r\nConnection: close\r\nVia: 1.1 edge-1\r\n\r\nok /b");
});

test("Via names the protocol version the message came with (HTTP/1.0 request: 1.0)", async () => {
  echo.received.length = 0;
  const answer = await raw(proxy.port, "POST /old HTTP/1.0\r\nHost: v.test\r\nContent-Length: 3\r\n\r\nabc");
  expect(echo.received).toEqual([{
    head: "POST /old HTTP/1.0\r\nHost: v.test\r\nContent-Length: 3\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: v.test\r\nVia: 1.0 edge-1\r\n\r\n",
    body: "abc", framing: "length", raw: "abc",
  }]);
  // The upstream answered as HTTP/1.1: its Via says 1.1; the 1.0 client's connection closes.
  expect(answer).toBe("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\nX-Backend: echo\r\nConnection: close\r\nVia: 1.1 edge-1\r\n\r\nok /old");
});

test("a chunked body goes on as received beside the edits", async () => {
  echo.received.length = 0;
  await raw(proxy.port, "PUT /c HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\nX-Debug: x\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n");
  expect(echo.received).toEqual([{
    head: "PUT /c HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Host: h.test\r\nx-env: prod\r\nX-Forwarded-Proto: https\r\nVia: 1.1 edge-1\r\n\r\n",
    body: "abc", framing: "chunked", raw: "3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
  }]);
});

test("without headers and via, the head is forwarded as before (hop-by-hop out, X-Forwarded-* in)", async () => {
  echo.received.length = 0;
  const answer = await raw(plainPort, "GET /p HTTP/1.1\r\nHost: h.test\r\nX-Debug: 1\r\nConnection: close\r\n\r\n");
  expect(echo.received.map((r) => r.head)).toEqual(["GET /p HTTP/1.1\r\nHost: h.test\r\nX-Debug: 1\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h.test\r\n\r\n"]);
  expect(answer).toBe("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\nX-Backend: echo\r\nConnection: close\r\n\r\nok /p");
});

test("http.notFound: the listener's answer to a request no route takes, with templates; the string form is a 404 body", async () => {
  const body = "<h1>nothing at nowhere.test/x?y</h1>";
  expect(await raw(proxy.port, "GET /x?y HTTP/1.1\r\nHost: NoWhere.test:8080\r\nConnection: close\r\n\r\n"))
    .toBe(`HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
  expect(await raw(plainPort, "HEAD /z HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n"))
    .toBe("HTTP/1.1 404 Not Found\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 17\r\nconnection: close\r\n\r\n");
  expect(await raw(plainPort, "GET /z HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n")).toEndWith("\r\n\r\ngone fishing: /z\n");
});
