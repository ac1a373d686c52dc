/**
 * The HTTP/1.1 head parsers over captured bytes and over every rejection rule of issue 14.
 *
 * Fixtures (test/fixtures/http-req-*.hex), captured on loopback with a recorder that accepts one
 * connection and writes every byte it reads (python3 socket server, 0.5 s quiet = end):
 *   curl-get:          curl "http://127.0.0.1:P/search?q=switchyard&lang=en" -A "Mozilla/5.0 (X11; Linux
 *                      x86_64; rv:128.0) Gecko/20100101 Firefox/128.0" -H Accept… -H Accept-Language…
 *                      -H "Accept-Encoding: gzip, deflate" -b "session=4f2a9c; theme=dark"   (curl 7.88.1)
 *   curl-post-cl:      curl http://127.0.0.1:P/api/items -H "Content-Type: application/json" --data-binary '{…}'
 *   curl-post-chunked: curl … -H "Transfer-Encoding: chunked" --data-binary @4053-byte-file
 *   python-get:        http.client.HTTPConnection.request("GET", "/status", headers={"X-Request-Id": …})
 *   python-chunked:    http.client request("POST", "/events", body=iter([3 parts]), encode_chunked=True)
 * Responses (http-res-*.hex): a python raw socket sent the request and recorded until close:
 *   nginx-*:  nginx 1.22.1 on loopback: a 17-byte static file (200, HEAD, 304 with If-Modified-Since),
 *             `return 204`, a gzip'd file with `add_trailer X-Checksum abc123` (chunked with a trailer),
 *             and two pipelined requests on one connection (200 then 301: keepalive-pair).
 *   python-close:       http.server.BaseHTTPRequestHandler writing a body without Content-Length.
 *   python-http-server: `python3 -m http.server` serving a 12-byte file (HTTP/1.0 with Content-Length).
 */
import { describe, expect, test } from "bun:test";
import { RequestHead, ResponseHead } from "../../src/http/head.ts";
import { parseRequestHead, parseResponseHead } from "../../src/http/parse-head.ts";
import { fixture } from "../helpers/fixtures.ts";
import { LIMITS, enc, everyByte, parseInPieces, parseWhole, snapshot } from "../helpers/http.ts";

const REQUESTS = ["curl-get", "curl-post-cl", "curl-post-chunked", "python-get", "python-chunked"];
const RESPONSES = ["nginx-200", "nginx-chunked-trailer", "nginx-304", "nginx-head", "nginx-204", "nginx-keepalive-pair", "python-close", "python-http-server"];

function request(text: string, limits = LIMITS) {
  return parseWhole("request", enc(text), limits);
}
function response(text: string, limits = LIMITS) {
  return parseWhole("response", enc(text), limits);
}
function requestReason(text: string): string {
  const r = request(text);
  return r.kind === "error" ? `${r.reason} ${r.status}` : r.kind;
}
function responseReason(text: string): string {
  const r = response(text);
  return r.kind === "error" ? `${r.reason} ${r.status}` : r.kind;
}

/** Same answer whole, one byte at a time, and cut in two at every point. */
function sameEveryWay(side: "request" | "response", bytes: Uint8Array) {
  const whole = parseWhole(side, bytes);
  expect(parseInPieces(side, bytes, everyByte(bytes.length))).toEqual(whole);
  for (let k = 0; k <= bytes.length; k++) expect(parseInPieces(side, bytes, [k])).toEqual(whole);
  return whole;
}

describe("captured requests, whole, one byte at a time, split at every point", () => {
  for (const name of REQUESTS) {
    test(name, () => {
      const bytes = fixture(`http-req-${name}`);
      const r = sameEveryWay("request", bytes);
      expect(r.kind).toBe("head");
      if (r.kind !== "head") return;
      expect(r.clean).toBe(true);
      expect(Buffer.from(bytes.subarray(r.consumed - 4, r.consumed)).toString("latin1")).toBe("\r\n\r\n");
    });
  }

  test("curl GET: method, target, host, path, fields decoded on demand", () => {
    const head = new RequestHead(LIMITS);
    const bytes = fixture("http-req-curl-get");
    const r = parseRequestHead(bytes, 0, head);
    if (r.kind !== "head") throw new Error(r.kind);
    expect(r).toBe(head); // the head object itself, nothing allocated for it
    expect(r.method).toBe("GET");
    expect(r.target()).toBe("/search?q=switchyard&lang=en");
    expect(r.path()).toBe("/search?q=switchyard&lang=en");
    expect(r.targetForm).toBe("origin");
    expect(r.host()).toBe("127.0.0.1:18081");
    expect(r.minorVersion).toBe(1);
    expect(r.get("user-agent")).toBe("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0");
    expect(r.get("cookie")).toBe("session=4f2a9c; theme=dark");
    expect(r.get("accept-encoding")).toBe("gzip, deflate");
    expect(r.get("x-absent")).toBeNull();
    expect(r.keepAlive).toBe(true);
    expect(r.consumed).toBe(bytes.length);
  });

  test("bodies: Content-Length and chunked", () => {
    const post = parseWhole("request", fixture("http-req-curl-post-cl"));
    expect(post.kind === "head" && post.contentLength).toBe(25);
    const chunked = new RequestHead(LIMITS);
    const r = parseRequestHead(fixture("http-req-python-chunked"), 0, chunked);
    expect(r.kind === "head" && r.chunked).toBe(true);
    expect(chunked.contentLength).toBe(-1);
  });
});

describe("captured responses, whole, one byte at a time, split at every point", () => {
  for (const name of RESPONSES) {
    test(name, () => {
      const r = sameEveryWay("response", fixture(`http-res-${name}`));
      expect(r.kind).toBe("head");
      expect(r.kind === "head" && r.clean).toBe(true);
    });
  }

  test("status, reason, version, keep-alive", () => {
    const head = new ResponseHead(LIMITS);
    let r = parseResponseHead(fixture("http-res-nginx-304"), 0, head);
    if (r.kind !== "head") throw new Error(r.kind);
    expect([r.status, r.reason(), r.minorVersion, r.keepAlive]).toEqual([304, "Not Modified", 1, false]);
    r = parseResponseHead(fixture("http-res-python-http-server"), 0, head);
    if (r.kind !== "head") throw new Error(r.kind);
    expect([r.status, r.minorVersion, r.keepAlive, r.contentLength]).toEqual([200, 0, false, 12]);
  });

  test("two pipelined responses: the second starts where the first body ends", () => {
    const bytes = fixture("http-res-nginx-keepalive-pair");
    const head = new ResponseHead(LIMITS);
    const first = parseResponseHead(bytes, 0, head);
    if (first.kind !== "head") throw new Error(first.kind);
    expect([first.status, first.keepAlive, first.contentLength]).toEqual([200, true, 17]);
    const next = first.end + first.contentLength;
    const second = parseResponseHead(bytes, next, head);
    if (second.kind !== "head") throw new Error(second.kind);
    expect([second.status, second.keepAlive, second.get("location")]).toEqual([301, false, "http://localhost:18090/index.html"]);
    expect(second.start).toBe(next);
    expect(second.consumed).toBe(second.end - next);
  });
});

describe("requests refused, each with its reason and status (issue 14, RFC 9112)", () => {
  const H = "Host: a\r\n";
  const cases: [string, string, string][] = [
    // Content-Length with Transfer-Encoding (RFC 9112 §6.1), either order.
    ["CL then TE", `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n`, "content_length_with_transfer_encoding 400"],
    ["TE then CL", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n`, "content_length_with_transfer_encoding 400"],
    // Several Content-Length values that differ (RFC 9110 §8.6).
    ["two differing CL lines", `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\n`, "conflicting_content_length 400"],
    ["a differing CL list", `POST / HTTP/1.1\r\n${H}Content-Length: 5, 6\r\n\r\n`, "conflicting_content_length 400"],
    // Content-Length not 1*DIGIT, or over 2^53-1.
    ["CL with a sign", `POST / HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\n`, "invalid_content_length 400"],
    ["CL negative", `POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`, "invalid_content_length 400"],
    ["CL hex", `POST / HTTP/1.1\r\n${H}Content-Length: 0x10\r\n\r\n`, "invalid_content_length 400"],
    ["CL with a letter", `POST / HTTP/1.1\r\n${H}Content-Length: 5a\r\n\r\n`, "invalid_content_length 400"],
    ["CL two numbers", `POST / HTTP/1.1\r\n${H}Content-Length: 5 5\r\n\r\n`, "invalid_content_length 400"],
    ["CL empty", `POST / HTTP/1.1\r\n${H}Content-Length: \r\n\r\n`, "invalid_content_length 400"],
    ["CL empty list element", `POST / HTTP/1.1\r\n${H}Content-Length: 5,,5\r\n\r\n`, "invalid_content_length 400"],
    ["CL 2^53", `POST / HTTP/1.1\r\n${H}Content-Length: 9007199254740992\r\n\r\n`, "content_length_overflow 400"],
    ["CL 2^64", `POST / HTTP/1.1\r\n${H}Content-Length: 18446744073709551616\r\n\r\n`, "content_length_overflow 400"],
    // Transfer-Encoding: chunked not last, twice, or not understood (RFC 9112 §6.1, §6.3 ¶4, §7).
    ["TE chunked then gzip", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n`, "chunked_not_last 400"],
    ["TE gzip only", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\n`, "chunked_not_last 400"],
    ["TE chunked, then gzip on a second line", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n`, "chunked_not_last 400"],
    ["TE chunked twice", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n`, "chunked_twice 400"],
    ["TE chunked on two lines", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n`, "chunked_twice 400"],
    ["TE unknown coding", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: foo, chunked\r\n\r\n`, "unknown_transfer_coding 501"],
    ["TE identity (removed from the registry)", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n`, "unknown_transfer_coding 501"],
    ["TE chunked with a parameter", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked;q=1\r\n\r\n`, "invalid_transfer_encoding 400"],
    ["TE empty", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: \r\n\r\n`, "invalid_transfer_encoding 400"],
    ["TE not a token", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: "chunked"\r\n\r\n`, "invalid_transfer_encoding 400"],
    // Transfer-Encoding on HTTP/1.0 (RFC 9112 §6.1: the framing is faulty).
    ["TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "transfer_encoding_in_http10 400"],
    // obs-fold (RFC 9112 §5.2), and whitespace before the first field (§2.2).
    ["obs-fold with SP", `GET / HTTP/1.1\r\n${H}X-A: b\r\n c\r\n\r\n`, "obs_fold 400"],
    ["obs-fold with HTAB", `GET / HTTP/1.1\r\n${H}X-A: b\r\n\tc\r\n\r\n`, "obs_fold 400"],
    ["whitespace after the request line", `GET / HTTP/1.1\r\n ${H}\r\n`, "whitespace_after_start_line 400"],
    // Bare CR anywhere (RFC 9112 §2.2).
    ["bare CR in a value", `GET / HTTP/1.1\r\n${H}X-A: b\rc\r\n\r\n`, "bare_cr 400"],
    ["bare CR ending the request line", `GET / HTTP/1.1\r${H}\r\n`, "bare_cr 400"],
    ["bare CR ending the head", `GET / HTTP/1.1\r\n${H}\rX\r\n`, "bare_cr 400"],
    ["bare CR before the request line", "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", "bare_cr 400"],
    // Bare LF as a line end in the head.
    ["bare LF ending the request line", `GET / HTTP/1.1\n${H}\r\n`, "bare_lf 400"],
    ["bare LF ending a field line", "GET / HTTP/1.1\r\nHost: a\n\r\n", "bare_lf 400"],
    ["bare LF ending the head", `GET / HTTP/1.1\r\n${H}\n`, "bare_lf 400"],
    ["LF LF", "GET / HTTP/1.1\n\n", "bare_lf 400"],
    ["bare LF before the request line", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "bare_lf 400"],
    ["a lone bare LF", "\n", "bare_lf 400"],
    // Whitespace before the colon (RFC 9112 §5.1: MUST be refused with 400).
    ["SP before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", "whitespace_before_colon 400"],
    ["HTAB before the colon", `GET / HTTP/1.1\r\n${H}X-A\t: b\r\n\r\n`, "whitespace_before_colon 400"],
    // Invalid token characters in the method and in field names (RFC 9110 §5.6.2).
    ["method with (", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_method 400"],
    ["method with a NUL", "GE\0T / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_method 400"],
    ["empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_method 400"],
    ["name with @", `GET / HTTP/1.1\r\n${H}X@A: b\r\n\r\n`, "invalid_header_name 400"],
    ["name with a space inside", `GET / HTTP/1.1\r\n${H}X A: b\r\n\r\n`, "invalid_header_name 400"],
    ["name with 8-bit", `GET / HTTP/1.1\r\n${H}X-\xe9: b\r\n\r\n`, "invalid_header_name 400"],
    ["empty name", `GET / HTTP/1.1\r\n${H}: b\r\n\r\n`, "invalid_header_name 400"],
    ["no colon", `GET / HTTP/1.1\r\n${H}X-A\r\n\r\n`, "missing_colon 400"],
    // Invalid value characters: CTLs except HTAB, and DEL (RFC 9110 §5.5).
    ["NUL in a value", `GET / HTTP/1.1\r\n${H}X-A: b\0c\r\n\r\n`, "invalid_header_value 400"],
    ["ESC in a value", `GET / HTTP/1.1\r\n${H}X-A: \x1b[31m\r\n\r\n`, "invalid_header_value 400"],
    ["DEL in a value", `GET / HTTP/1.1\r\n${H}X-A: b\x7f\r\n\r\n`, "invalid_header_value 400"],
    ["CTL in Host", "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", "invalid_header_value 400"],
    // Host (RFC 9112 §3.2): required in 1.1, once, valid.
    ["no Host in 1.1", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", "missing_host 400"],
    ["two Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", "multiple_host 400"],
    ["Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "invalid_host 400"],
    ["Host with a path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "invalid_host 400"],
    ["Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", "invalid_host 400"],
    ["Host with a bad port", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", "invalid_host 400"],
    ["Host with an open bracket", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", "invalid_host 400"],
    // Connection must be a list of tokens: otherwise nobody knows which fields are hop-by-hop.
    ["Connection with a parameter", `GET / HTTP/1.1\r\n${H}Connection: close;x=1\r\n\r\n`, "invalid_connection 400"],
    // Request line (RFC 9112 §3): single spaces, a target of visible ASCII, a version.
    ["two spaces after the method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_target 400"],
    ["space after the version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", "invalid_version 400"],
    ["no version (HTTP/0.9)", "GET /\r\n\r\n", "invalid_request_line 400"],
    ["lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", "invalid_version 400"],
    ["HTTP/1.10", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", "invalid_version 400"],
    // Found by bench/fuzz/http.ts: a version shorter than 8 bytes, its line already ended by LF.
    ["a short version ended by LF", "POST / H\nHost: a\r", "invalid_version 400"],
    ["HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "unsupported_version 505"],
    ["HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", "unsupported_version 505"],
    ["DEL in the target", "GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_target 400"],
    ["8-bit in the target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_target 400"],
    ["* with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_target 400"],
    ["CONNECT with a path", "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_target 400"],
    ["CONNECT without a port", "CONNECT a.example HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_target 400"],
    ["absolute-form with userinfo", "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_target 400"],
    ["a fragment in the target", "GET /page#frag HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_target 400"],
    ["absolute-form whose authority is not the Host", "GET http://a.test/x HTTP/1.1\r\nHost: b.test\r\n\r\n", "host_mismatch 400"],
    ["absolute-form without a host", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_target 400"],
    ["a relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_target 400"],
  ];
  for (const [name, text, expected] of cases) {
    test(`${name}: ${JSON.stringify(text)}`, () => {
      expect(requestReason(text)).toBe(expected);
      // The same answer however the bytes arrive.
      const bytes = enc(text);
      const whole = parseWhole("request", bytes);
      expect(parseInPieces("request", bytes, everyByte(bytes.length))).toEqual(whole);
      for (let k = 0; k <= bytes.length; k++) expect(parseInPieces("request", bytes, [k])).toEqual(whole);
    });
  }
});

describe("requests accepted at the edges of the rules", () => {
  test("identical Content-Length values are merged (RFC 9110 §8.6) and the head is not clean", () => {
    for (const text of ["POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\nContent-Length: 5\r\n\r\n"]) {
      const r = request(text);
      expect(r.kind === "head" && [r.contentLength, r.clean]).toEqual([5, false]);
    }
  });

  test("Content-Length 2^53-1, and leading zeros", () => {
    expect(request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740991\r\n\r\n")).toMatchObject({ kind: "head", contentLength: 9007199254740991 });
    expect(request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0000000000000000000042\r\n\r\n")).toMatchObject({ kind: "head", contentLength: 42, clean: true });
  });

  test("a request with a known coding before chunked is refused as not understood (relayed, never decoded here)", () => {
    for (const te of ["gzip, chunked", "GZIP;level=9, Chunked", 'gzip ; q="a\\"b" , chunked', ", gzip,,chunked ,"]) {
      expect(request(`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ${te}\r\n\r\n`)).toMatchObject({ kind: "error", reason: "unknown_transfer_coding", status: 501 });
    }
    expect(request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")).toMatchObject({ kind: "error", reason: "unknown_transfer_coding" });
    // Empty list elements and OWS around chunked alone are fine.
    expect(request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked ,\r\n\r\n")).toMatchObject({ kind: "head", clean: true });
  });

  test("HTTP/1.0 without Host; OPTIONS *; CONNECT authority; IPv6 Host; empty Host", () => {
    expect(request("GET / HTTP/1.0\r\n\r\n").kind).toBe("head");
    expect(request("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")).toMatchObject({ kind: "head", startLine: "OPTIONS * HTTP/1.1\r\n" });
    const head = new RequestHead(LIMITS);
    let r = parseRequestHead(enc("CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\n\r\n"), 0, head);
    expect(r.kind === "head" && [r.targetForm, r.host()]).toEqual(["authority", "db.example:5432"]);
    r = parseRequestHead(enc("GET / HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n"), 0, head);
    expect(r.kind === "head" && r.host()).toBe("[2001:db8::1]:8443");
    r = parseRequestHead(enc("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 0, head);
    expect(r.kind === "head" && r.host()).toBe("");
  });

  test("absolute-form: the target's authority is the host (RFC 9112 §3.2.2), so the head is not clean", () => {
    const head = new RequestHead(LIMITS);
    const r = parseRequestHead(enc("GET http://Example.COM:8080?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"), 0, head);
    if (r.kind !== "head") throw new Error(r.kind);
    expect([r.targetForm, r.host(), r.path(), r.clean]).toEqual(["absolute", "Example.COM:8080", "/?q=1", false]);
  });

  test("empty lines before the request line are skipped (RFC 9112 §2.2) and counted as consumed", () => {
    const r = request("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    expect(r).toMatchObject({ kind: "head", start: 4, consumed: 4 + 27, startLine: "GET / HTTP/1.1\r\n" });
  });

  test("OWS around values is trimmed; HTAB and obs-text are allowed in values; an empty value is a value", () => {
    const r = request("GET / HTTP/1.1\r\nHost: a\r\nX-A:\t b\tc \t\r\nX-B: caf\xe9\r\nX-C:\r\n\r\n");
    expect(r.kind === "head" && r.fields.map(([n, v]) => [n, v])).toEqual([["Host", "a"], ["X-A", "b\tc"], ["X-B", "caf\xe9"], ["X-C", ""]]);
  });

  test("field names are case-insensitive; methods are not (an unknown method is still a method)", () => {
    const head = new RequestHead(LIMITS);
    const r = parseRequestHead(enc("get / HTTP/1.1\r\nHOST: a\r\nCONTENT-length: 3\r\n\r\n"), 0, head);
    if (r.kind !== "head") throw new Error(r.kind);
    expect([r.method, r.host(), r.contentLength, r.get("content-length")]).toEqual(["get", "a", 3, "3"]);
  });

  test("repeated fields are joined by get(); Connection options", () => {
    const head = new RequestHead(LIMITS);
    const r = parseRequestHead(enc("GET / HTTP/1.1\r\nHost: a\r\nAccept: a/b\r\nConnection: Keep-Alive, X-Trace\r\naccept: c/d\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"), 0, head);
    if (r.kind !== "head") throw new Error(r.kind);
    expect(r.get("accept")).toBe("a/b, c/d");
    expect([r.connectionHas("keep-alive"), r.connectionHas("x-trace"), r.connectionHas("close"), r.isUpgrade, r.keepAlive]).toEqual([true, true, false, true, true]);
    const http10 = parseRequestHead(enc("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 0, new RequestHead(LIMITS));
    expect(http10.kind === "head" && http10.keepAlive).toBe(true);
    const close = parseRequestHead(enc("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), 0, new RequestHead(LIMITS));
    expect(close.kind === "head" && close.keepAlive).toBe(false);
  });

  test("a head followed by a body or the next request: consumed stops at the empty line", () => {
    const text = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n";
    expect(request(text)).toMatchObject({ kind: "head", consumed: text.indexOf("abc") });
  });
});

describe("limits (431)", () => {
  const text = "GET / HTTP/1.1\r\nHost: a\r\nX-A: 0123456789\r\n\r\n";
  test("maxHeaderBytes counts the whole head, final empty line included", () => {
    expect(request(text, { maxHeaderBytes: text.length, maxHeaders: 10 }).kind).toBe("head");
    expect(requestReasonWith(text, { maxHeaderBytes: text.length - 1, maxHeaders: 10 })).toBe("header_too_large 431");
  });

  test("bytes past the limit without the end of the head are refused before the end arrives", () => {
    const limits = { maxHeaderBytes: 64, maxHeaders: 10 };
    const head = new RequestHead(limits);
    const start = enc(`GET /${"a".repeat(40)} HTTP/1.1\r\nHost: a\r\nX-A: ${"b".repeat(20)}`);
    expect(parseRequestHead(start.subarray(0, 64), 0, head).kind).toBe("need-more");
    expect(parseRequestHead(start.subarray(0, 65), 0, head)).toMatchObject({ kind: "error", reason: "header_too_large", status: 431 });
  });

  test("maxHeaders field lines are fine, one more is refused", () => {
    const lines = (n: number) => "GET / HTTP/1.1\r\nHost: a\r\n" + "X: y\r\n".repeat(n - 1) + "\r\n";
    expect(request(lines(5), { maxHeaderBytes: 1000, maxHeaders: 5 }).kind).toBe("head");
    expect(requestReasonWith(lines(6), { maxHeaderBytes: 1000, maxHeaders: 5 })).toBe("too_many_headers 431");
  });

  test("a problem inside the limit is named even when the bytes go past it", () => {
    expect(requestReasonWith("GET / HTTP/1.1\r\nHost: a\r\nX@: b\r\n" + "X: y\r\n".repeat(100), { maxHeaderBytes: 100, maxHeaders: 100 })).toBe("invalid_header_name 400");
  });

  test("a client sending one byte at a time: each call resumes after the judged lines, the answer is the same", () => {
    const bytes = fixture("http-req-curl-get");
    const head = new RequestHead(LIMITS);
    let resume = 0;
    let resumedInFields = 0;
    for (let k = 1; k < bytes.length; k++) {
      const r = parseRequestHead(bytes.slice(0, k), 0, head, resume);
      if (r.kind !== "need-more") throw new Error(`${k}: ${r.kind}`);
      expect(r.resume).not.toBe(resume);
      if (head.resumeInFields && head.resumeLine > 0) resumedInFields++;
      resume = r.resume;
    }
    expect(resumedInFields).toBeGreaterThan(bytes.length / 2);
    expect(snapshot(parseRequestHead(bytes, 0, head, resume))).toEqual(parseWhole("request", bytes));
  });

  test("a token of a head that has since finished cannot resume it", () => {
    const head = new RequestHead(LIMITS);
    const first = parseRequestHead(enc("GET / HTTP/1.1\r\nHost: a\r\n"), 0, head);
    if (first.kind !== "need-more") throw new Error(first.kind);
    const done = parseRequestHead(enc("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0, head, first.resume);
    expect(done.kind === "head" && done.count).toBe(1);
    // Other bytes of the same length before the resume point: a continuation would keep "GET".
    const replay = parseRequestHead(enc("PUT / HTTP/1.1\r\nHost: a\r\n\r\nX"), 0, head, first.resume);
    expect(replay.kind === "head" && [replay.method, replay.count]).toEqual(["PUT", 1]);
  });

  test("a stale resume token (the head object parsed another message since) parses from the start", () => {
    const head = new RequestHead(LIMITS);
    const a = enc("GET /a HTTP/1.1\r\nHost: a\r\nX-Long: 1");
    const first = parseRequestHead(a, 0, head);
    if (first.kind !== "need-more") throw new Error(first.kind);
    // Another connection uses the same object in between, with a bad request at the same offsets.
    expect(parseRequestHead(enc("GET /b HTTP/1.1\r\nHost: b\r\nX@: 1\r\n"), 0, head).kind).toBe("error");
    // The first connection's bytes, grown; its old token must not let the parser skip anything.
    const rest = enc("GET /a HTTP/1.1\r\nHost: a\r\nX-Long: 1\r\n\r\n");
    const r = parseRequestHead(rest, 0, head, first.resume);
    expect(r.kind === "head" && [r.target(), r.host()]).toEqual(["/a", "a"]);
    // And a token given with another start: from that start (a resume would have kept method GET).
    const again = parseRequestHead(a, 0, head);
    if (again.kind !== "need-more") throw new Error(again.kind);
    const moved = parseRequestHead(enc("GET /a HTTP/1.1\r\nHost: a\r\n\r\n"), 2, head, again.resume);
    expect(moved.kind === "head" && moved.method).toBe("T");
  });
});

function requestReasonWith(text: string, limits: { maxHeaderBytes: number; maxHeaders: number }): string {
  const r = request(text, limits);
  return r.kind === "error" ? `${r.reason} ${r.status}` : r.kind;
}

describe("responses: the same field rules, 502 for the client, and only the repairs the RFC names", () => {
  const cases: [string, string, string][] = [
    ["obs-fold (a proxy may refuse with 502, RFC 9112 §5.2)", "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\n\r\n", "obs_fold 502"],
    ["bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "bare_lf 502"],
    ["bare CR", "HTTP/1.1 200 OK\r\nX-A: b\rc\r\n\r\n", "bare_cr 502"],
    ["differing Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "conflicting_content_length 502"],
    ["invalid Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 1.5\r\n\r\n", "invalid_content_length 502"],
    ["chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", "chunked_twice 502"],
    ["Transfer-Encoding on HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "transfer_encoding_in_http10 502"],
    ["status of two digits", "HTTP/1.1 99 OK\r\n\r\n", "invalid_status 502"],
    ["status 600", "HTTP/1.1 600 OK\r\n\r\n", "invalid_status 502"],
    ["status of four digits", "HTTP/1.1 2000 OK\r\n\r\n", "invalid_status_line 502"],
    ["no space after the status (RFC 9112 §4 requires it)", "HTTP/1.1 200\r\n\r\n", "invalid_status_line 502"],
    ["two spaces after the version", "HTTP/1.1  200 OK\r\n\r\n", "invalid_status 502"],
    ["NUL in the reason", "HTTP/1.1 200 O\0K\r\n\r\n", "invalid_status_line 502"],
    ["HTTP/2 status line", "HTTP/2.0 200 OK\r\n\r\n", "unsupported_version 502"],
    ["not HTTP", "SSH-2.0-OpenSSH_9.2\r\n", "invalid_version 502"],
    ["a short version ended by LF (found by the fuzzer)", "HT\nP/1.0 2", "invalid_version 502"],
    ["a status line cut by LF in the code", "HTTP/1.1 2\n0 OK\r\n\r\n", "invalid_status 502"],
    ["invalid field name", "HTTP/1.1 200 OK\r\nX(A): b\r\n\r\n", "invalid_header_name 502"],
  ];
  for (const [name, text, expected] of cases) {
    test(`${name}: ${JSON.stringify(text)}`, () => {
      expect(responseReason(text)).toBe(expected);
      const bytes = enc(text);
      const whole = parseWhole("response", bytes);
      for (let k = 0; k <= bytes.length; k++) expect(parseInPieces("response", bytes, [k])).toEqual(whole);
    });
  }

  test("whitespace before a colon is removed, not refused (RFC 9112 §5.1: a proxy MUST remove it)", () => {
    const r = response("HTTP/1.1 200 OK\r\nContent-Length : 3\r\nX-A\t: b\r\n\r\n");
    expect(r).toMatchObject({ kind: "head", clean: false, contentLength: 3 });
    expect(r.kind === "head" && r.fields.map(([n, v]) => `${n}=${v}`)).toEqual(["Content-Length=3", "X-A=b"]);
  });

  test("Content-Length beside Transfer-Encoding: Transfer-Encoding wins, Content-Length is dropped (RFC 9112 §6.3 ¶3)", () => {
    const head = new ResponseHead(LIMITS);
    const r = parseResponseHead(enc("HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n"), 0, head);
    if (r.kind !== "head") throw new Error(r.kind);
    expect([r.contentLength, r.chunked, r.clean]).toEqual([-1, true, false]);
  });

  test("any coding may precede chunked in a response; an empty reason after the space is fine", () => {
    expect(response("HTTP/1.1 200 \r\nTransfer-Encoding: br, chunked\r\n\r\n")).toMatchObject({ kind: "head", clean: true });
    expect(response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").kind).toBe("head"); // until close (body.ts)
  });

  test("empty lines before a status line are not skipped (only a server may, RFC 9112 §2.2)", () => {
    expect(responseReason("\r\nHTTP/1.1 200 OK\r\n\r\n")).toBe("invalid_version 502");
  });
});
