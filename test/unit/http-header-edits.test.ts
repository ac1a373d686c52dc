/**
 * The edits a forwarded head gets (src/http/header-edits.ts): a route's `headers`, `http.via` and
 * X-Forwarded-*, serialised by serialize.ts and parsed again, so the result is the bytes the next hop
 * gets. (The integration test http-headers.test.ts checks the same at a real backend.)
 */
import { describe, expect, test } from "bun:test";
import { RequestHead, ResponseHead } from "../../src/http/head.ts";
import { parseRequestHead, parseResponseHead } from "../../src/http/parse-head.ts";
import { serializeHead } from "../../src/http/serialize.ts";
import { requestEdits, responseEdits } from "../../src/http/header-edits.ts";
import type { HttpListenerConfig, RouteConfig } from "../../src/config/types.ts";
import type { RouteRuntime } from "../../src/proxy/runtime.ts";
import { LIMITS, enc } from "../helpers/http.ts";

const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");
const LISTENER: HttpListenerConfig = { maxHeaderBytes: 65536, maxHeaders: 100, headerTimeoutMs: 1, keepAliveTimeoutMs: 1, forwarded: "append", trustedProxies: [] };

function route(headers: NonNullable<RouteConfig["http"]>["headers"]): RouteRuntime {
  return { config: { http: { pool: { maxIdle: 1, idleTimeoutMs: 1 }, timeoutMs: 1, redirect: null, drop: false, headers } } } as unknown as RouteRuntime;
}

function req(s: string): RequestHead {
  const r = parseRequestHead(enc(s), 0, new RequestHead(LIMITS));
  if (r.kind !== "head") throw new Error(r.kind);
  return r;
}

function res(s: string): ResponseHead {
  const r = parseResponseHead(enc(s), 0, new ResponseHead(LIMITS));
  if (r.kind !== "head") throw new Error(r.kind);
  return r;
}

const XFF: [string, string][] = [["X-Forwarded-For", "1.2.3.4"], ["X-Forwarded-Proto", "http"]];

describe("request edits", () => {
  test("without route headers and via: the forwarded fields alone (no object made beyond { set })", () => {
    expect(requestEdits(null, LISTENER, 1, XFF)).toEqual({ set: XFF });
    expect(requestEdits(null, LISTENER, 1, null)).toEqual({ set: undefined });
  });

  test("a route's set wins over X-Forwarded-* of the same name (any case); remove and Via", () => {
    const r = route({ request: { set: [["x-forwarded-proto", "https"], ["X-Env", "prod"]], remove: ["x-debug"] }, response: { set: [], remove: [] } });
    const head = req("GET / HTTP/1.1\r\nHost: a\r\nX-Debug: 1\r\nX-Env: dev\r\nVia: 1.0 old\r\n\r\n");
    const out = text(serializeHead(head, requestEdits(r, { ...LISTENER, via: "edge" }, head.minorVersion, XFF)));
    expect(out).toBe("GET / HTTP/1.1\r\nHost: a\r\nVia: 1.0 old\r\nX-Forwarded-For: 1.2.3.4\r\nx-forwarded-proto: https\r\nX-Env: prod\r\nVia: 1.1 edge\r\n\r\n");
    expect(parseRequestHead(enc(out), 0, new RequestHead(LIMITS)).kind).toBe("head");
  });

  test("Via says 1.0 for a message that came as HTTP/1.0", () => {
    const head = req("GET / HTTP/1.0\r\n\r\n");
    expect(text(serializeHead(head, requestEdits(null, { ...LISTENER, via: "edge" }, head.minorVersion, null)))).toBe("GET / HTTP/1.0\r\nVia: 1.0 edge\r\n\r\n");
  });
});

describe("response edits", () => {
  const CLOSE = { add: [["Connection", "close"]] as [string, string][] };

  test("without route headers and via, the base edits object itself", () => {
    expect(responseEdits(CLOSE, null, LISTENER, 1)).toBe(CLOSE);
  });

  test("set, remove, then the base's Connection and Via", () => {
    const r = route({ request: { set: [], remove: [] }, response: { set: [["X-Served-By", "edge"]], remove: ["server"] } });
    const head = res("HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n");
    expect(text(serializeHead(head, responseEdits(CLOSE, r, { ...LISTENER, via: "edge" }, head.minorVersion))))
      .toBe("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Served-By: edge\r\nConnection: close\r\nVia: 1.1 edge\r\n\r\n");
  });
});
