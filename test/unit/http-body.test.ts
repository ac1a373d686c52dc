/**
 * The body-length decision (RFC 9112 §6.3) over captured nginx and python responses (see
 * http-head.test.ts for how they were made) and the requests that reach it.
 */
import { describe, expect, test } from "bun:test";
import { requestBody, responseBody } from "../../src/http/body.ts";
import { RequestHead, ResponseHead } from "../../src/http/head.ts";
import { parseRequestHead, parseResponseHead } from "../../src/http/parse-head.ts";
import { fixture } from "../helpers/fixtures.ts";
import { LIMITS, enc } from "../helpers/http.ts";

function response(bytes: Uint8Array): ResponseHead {
  const r = parseResponseHead(bytes, 0, new ResponseHead(LIMITS));
  if (r.kind !== "head") throw new Error(`${r.kind} ${r.kind === "error" ? r.reason : ""}`);
  return r;
}

function request(bytes: Uint8Array): RequestHead {
  const r = parseRequestHead(bytes, 0, new RequestHead(LIMITS));
  if (r.kind !== "head") throw new Error(`${r.kind} ${r.kind === "error" ? r.reason : ""}`);
  return r;
}

describe("responses (RFC 9112 §6.3)", () => {
  test("captured: length, chunked, until close, and none for HEAD, 204, 304", () => {
    expect(responseBody(response(fixture("http-res-nginx-200")), "GET")).toBe("length");
    expect(responseBody(response(fixture("http-res-nginx-chunked-trailer")), "GET")).toBe("chunked");
    expect(responseBody(response(fixture("http-res-python-close")), "GET")).toBe("close");
    expect(responseBody(response(fixture("http-res-python-http-server")), "GET")).toBe("length");
    // nginx's HEAD answer says Content-Length: 17 and sends no body.
    const head = response(fixture("http-res-nginx-head"));
    expect(head.contentLength).toBe(17);
    expect(responseBody(head, "HEAD")).toBe("none");
    expect(responseBody(response(fixture("http-res-nginx-204")), "GET")).toBe("none");
    expect(responseBody(response(fixture("http-res-nginx-304")), "GET")).toBe("none");
  });

  test("HEAD, 1xx, 204 and 304 have no body whatever the fields say (¶1)", () => {
    const framed = (status: string) => enc(`HTTP/1.1 ${status}\r\nTransfer-Encoding: chunked\r\n\r\n`);
    expect(responseBody(response(framed("200 OK")), "HEAD")).toBe("none");
    expect(responseBody(response(framed("100 Continue")), "POST")).toBe("none");
    expect(responseBody(response(framed("103 Early Hints")), "GET")).toBe("none");
    expect(responseBody(response(enc("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n")), "GET")).toBe("none");
    expect(responseBody(response(enc("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n")), "GET")).toBe("none");
  });

  test("101 and a 2xx to CONNECT turn the connection into a tunnel (¶2); other answers to CONNECT do not", () => {
    expect(responseBody(response(enc("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")), "GET")).toBe("tunnel");
    expect(responseBody(response(enc("HTTP/1.1 200 Connection Established\r\n\r\n")), "CONNECT")).toBe("tunnel");
    expect(responseBody(response(enc("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\n")), "CONNECT")).toBe("length");
  });

  test("Transfer-Encoding without chunked last reads until close (¶4); it overrides Content-Length (¶3)", () => {
    expect(responseBody(response(enc("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")), "GET")).toBe("close");
    expect(responseBody(response(enc("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n")), "GET")).toBe("close");
    const both = response(enc("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"));
    expect([responseBody(both, "GET"), both.contentLength]).toEqual(["chunked", -1]);
  });

  test("Content-Length 0 is no body; neither field means until close (¶8)", () => {
    expect(responseBody(response(enc("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")), "GET")).toBe("none");
    expect(responseBody(response(enc("HTTP/1.1 500 Oops\r\n\r\n")), "GET")).toBe("close");
  });
});

describe("requests (RFC 9112 §6.3 ¶4-¶7)", () => {
  test("captured: none, length, chunked", () => {
    expect(requestBody(request(fixture("http-req-curl-get")))).toBe("none");
    expect(requestBody(request(fixture("http-req-curl-post-cl")))).toBe("length");
    expect(requestBody(request(fixture("http-req-curl-post-chunked")))).toBe("chunked");
    expect(requestBody(request(fixture("http-req-python-chunked")))).toBe("chunked");
  });

  test("Content-Length 0 and no framing field are no body", () => {
    expect(requestBody(request(enc("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")))).toBe("none");
    expect(requestBody(request(enc("POST / HTTP/1.0\r\n\r\n")))).toBe("none");
    expect(requestBody(request(enc("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")))).toBe("chunked");
  });
});
