/**
 * Hop-by-hop removal and the head serializer: what the next hop receives. Every output is parsed
 * again, so a serializer bug that writes an invalid head fails here too.
 */
import { describe, expect, test } from "bun:test";
import { RequestHead, ResponseHead } from "../../src/http/head.ts";
import { hasHopByHop } from "../../src/http/hop-by-hop.ts";
import { parseRequestHead, parseResponseHead } from "../../src/http/parse-head.ts";
import { type HeadEdits, compactInPlace, isEditableField, serializeHead, serializeHeadInto } from "../../src/http/serialize.ts";
import { fixture } from "../helpers/fixtures.ts";
import { LIMITS, enc } from "../helpers/http.ts";

const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");

function request(bytes: Uint8Array): RequestHead {
  const r = parseRequestHead(bytes, 0, new RequestHead(LIMITS));
  if (r.kind !== "head") throw new Error(`${r.kind} ${r.kind === "error" ? r.reason : ""}`);
  return r;
}

function response(bytes: Uint8Array): ResponseHead {
  const r = parseResponseHead(bytes, 0, new ResponseHead(LIMITS));
  if (r.kind !== "head") throw new Error(`${r.kind} ${r.kind === "error" ? r.reason : ""}`);
  return r;
}

/** Serialize, check the output parses again as a clean head, and return it as text. */
function forward(head: RequestHead | ResponseHead, edits?: HeadEdits): string {
  const out = serializeHead(head, edits);
  const again = head instanceof RequestHead ? request(out) : response(out);
  if (!(head instanceof RequestHead && head.targetForm === "absolute")) expect(again.clean).toBe(true);
  expect(again.consumed).toBe(out.length);
  return text(out);
}

describe("a head with nothing to change", () => {
  test("comes back as a view of the received bytes, no copy", () => {
    for (const name of ["http-req-curl-get", "http-req-python-get", "http-req-curl-post-cl"]) {
      const bytes = fixture(name);
      const head = request(bytes);
      expect(hasHopByHop(head, false)).toBe(false);
      const out = serializeHead(head);
      expect(out.buffer).toBe(bytes.buffer);
      expect(out.byteOffset).toBe(0);
      expect(out.length).toBe(head.end);
    }
    const res = fixture("http-res-nginx-chunked-trailer");
    const head = response(res);
    expect(hasHopByHop(head, false)).toBe(true); // Connection: close, Transfer-Encoding
  });

  test("a head after skipped empty lines is the view from its start line", () => {
    const bytes = enc("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    expect(text(serializeHead(request(bytes)))).toBe("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  });
});

describe("hop-by-hop fields (RFC 9110 §7.6.1)", () => {
  const browser = enc(
    "GET /app HTTP/1.1\r\nHost: shop.example\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\n" +
    "Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-Sum\r\nUpgrade: h2c\r\nProxy-Authorization: Basic YTpi\r\n" +
    "X-Secret: 42\r\nAccept: text/html\r\nCookie: a=1\r\n\r\n",
  );

  test("are all removed, with every field Connection names; the rest keeps its order and bytes", () => {
    const head = request(browser);
    const received = text(browser);
    expect(hasHopByHop(head, false)).toBe(true);
    expect(forward(head)).toBe("GET /app HTTP/1.1\r\nHost: shop.example\r\nAccept: text/html\r\nCookie: a=1\r\n\r\n");
    expect(forward(head, { add: [["Via", "1.1 sy"]] })).toBe("GET /app HTTP/1.1\r\nHost: shop.example\r\nAccept: text/html\r\nCookie: a=1\r\nVia: 1.1 sy\r\n\r\n");
    expect(text(browser)).toBe(received); // the head is compacted in a copy, never in the received bytes
  });

  test("Upgrade goes on for an upgrade, with Connection: upgrade (RFC 9110 §7.8)", () => {
    const ws = request(enc("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n"));
    expect(ws.isUpgrade).toBe(true);
    expect(forward(ws, { upgrade: true })).toBe("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\nConnection: upgrade\r\n\r\n");
    expect(forward(ws)).toBe("GET /ws HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Key: k\r\n\r\n");
    // Upgrade without the connection option is not an upgrade: it is removed even when asked.
    const lone = request(enc("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"));
    expect(forward(lone, { upgrade: true })).toBe("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  });

  test("a Connection option naming Content-Length, Transfer-Encoding or Host removes nothing of the framing", () => {
    const abuse = request(enc("POST / HTTP/1.1\r\nHost: a\r\nConnection: content-length, host, transfer-encoding\r\nContent-Length: 3\r\n\r\n"));
    expect(forward(abuse)).toBe("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n");
  });

  test("Transfer-Encoding goes on as received: the chunked body is relayed byte for byte", () => {
    const head = request(fixture("http-req-python-chunked"));
    expect(forward(head)).toContain("\r\nTransfer-Encoding: chunked\r\n");
    const res = response(fixture("http-res-nginx-chunked-trailer"));
    const out = forward(res);
    expect(out).toContain("\r\nTransfer-Encoding: chunked\r\n");
    expect(out).not.toContain("Connection");
  });
});

describe("edits", () => {
  const head = () => request(enc("GET / HTTP/1.1\r\nHost: a\r\nx-forwarded-for: 10.0.0.1\r\nX-Debug: 1\r\nAccept: */*\r\n\r\n"));

  test("set replaces every received field of its name (any case), add goes beside, remove leaves out", () => {
    expect(forward(head(), {
      set: [["X-Forwarded-For", "10.0.0.1, 192.0.2.7"], ["X-Forwarded-Proto", "https"]],
      add: [["Via", "1.1 switchyard"]],
      remove: ["x-DEBUG"],
    })).toBe("GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.1, 192.0.2.7\r\nX-Forwarded-Proto: https\r\nVia: 1.1 switchyard\r\n\r\n");
  });

  test("Host can be set, not removed; framing fields can be neither", () => {
    expect(forward(head(), { set: [["host", "upstream:8080"]], remove: ["host"] })).toBe(
      "GET / HTTP/1.1\r\nx-forwarded-for: 10.0.0.1\r\nX-Debug: 1\r\nAccept: */*\r\nhost: upstream:8080\r\n\r\n",
    );
    const post = request(enc("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n"));
    expect(forward(post, { remove: ["content-length"] })).toBe("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n");
    expect(() => serializeHead(post, { set: [["Content-Length", "3"]] })).toThrow(TypeError);
    expect(() => serializeHead(post, { add: [["transfer-encoding", "chunked"]] })).toThrow(TypeError);
    expect(() => serializeHead(post, { add: [["Host", "b"]] })).toThrow(TypeError);
    expect([isEditableField("x-env"), isEditableField("content-length"), isEditableField("bad name")]).toEqual([true, false, false]);
  });

  test("a name or value that could inject a line throws", () => {
    expect(() => serializeHead(head(), { add: [["X-A", "b\r\nX-Injected: 1"]] })).toThrow(TypeError);
    expect(() => serializeHead(head(), { add: [["X-A\r\nX-B", "b"]] })).toThrow(TypeError);
    expect(() => serializeHead(head(), { set: [["X-A", "caf\u00e9 \u2603"]] })).toThrow(TypeError);
  });
});

describe("heads that are not clean are re-serialised", () => {
  test("identical Content-Length values are written once", () => {
    expect(forward(request(enc("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n")))).toBe(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
    );
    expect(forward(request(enc("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 005\r\nX: y\r\n\r\n")))).toBe(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX: y\r\n\r\n",
    );
  });

  test("absolute-form: Host is written from the target's authority (RFC 9112 §3.2.2; one that differs is refused)", () => {
    expect(forward(request(enc("GET http://real.example/x HTTP/1.1\r\nHost: REAL.Example\r\nAccept: */*\r\n\r\n")))).toBe(
      "GET http://real.example/x HTTP/1.1\r\nHost: real.example\r\nAccept: */*\r\n\r\n",
    );
  });

  test("a response's whitespace before a colon is removed (RFC 9112 §5.1)", () => {
    expect(forward(response(enc("HTTP/1.1 200 OK\r\nContent-Length : 2\r\nX-A \t:  b \r\nX-B: c\r\n\r\n")))).toBe(
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\nX-B: c\r\n\r\n",
    );
  });

  test("a response's Content-Length beside Transfer-Encoding is left out (RFC 9112 §6.3 ¶3)", () => {
    expect(forward(response(enc("HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n")))).toBe(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n",
    );
  });
});

describe("serializeHeadInto (a caller's buffer, body bytes may follow)", () => {
  const edits: HeadEdits[] = [{}, { set: [["X-Forwarded-For", "10.0.0.1"]] }, { add: [["Connection", "close"]] }, { remove: ["user-agent"] }];
  const heads = () => [
    request(fixture("http-req-curl-get")), request(fixture("http-req-curl-post-cl")),
    request(enc("GET http://a.example/x HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n")),
    request(enc("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n")),
    response(fixture("http-res-nginx-chunked-trailer")),
    response(enc("HTTP/1.1 200 OK\r\nServer : x\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok")),
  ];
  test("writes at an offset exactly what serializeHead returns, and says where it ends", () => {
    for (const e of edits) {
      for (const head of heads()) {
        const want = text(serializeHead(head, e));
        for (const at of [0, 7]) {
          const out = new Uint8Array(at + 4096).fill(0x7e);
          const end = serializeHeadInto(head, e, out, at);
          expect(end).toBe(at + want.length);
          expect(text(out.subarray(at, end))).toBe(want);
          expect(out.subarray(0, at).every((b) => b === 0x7e)).toBe(true); // nothing before `at` touched
        }
      }
    }
  });
  test("-1 and nothing written when the buffer has no room", () => {
    for (const head of heads()) {
      const want = serializeHead(head, edits[1]).length;
      const out = new Uint8Array(want - 1 + 3).fill(0x7e);
      expect(serializeHeadInto(head, edits[1]!, out, 3)).toBe(-1);
      expect(out.every((b) => b === 0x7e)).toBe(true);
    }
  });
});

describe("compactInPlace (a head moved up to its body inside its own bytes)", () => {
  test("ends where it ended, holds exactly what serializeHead writes, the body after it untouched", () => {
    const cases = [
      "HTTP/1.1 200 OK\r\nServer: nginx\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello",
      "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: x-hop\r\nX-Hop: 1\r\nX-B: 2\r\n\r\nhello",
      "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", // nothing to drop: unchanged
    ];
    for (const c of cases) {
      const bytes = enc(c);
      const head = response(bytes);
      const want = text(serializeHead(head));
      const body = text(bytes.subarray(head.end));
      const start = compactInPlace(head, {});
      expect(start).toBeGreaterThanOrEqual(0);
      expect(text(bytes.subarray(start, head.end))).toBe(want);
      expect(text(bytes.subarray(head.end))).toBe(body);
    }
  });
  test("-1, bytes unchanged, when the edits add fields or a line must be rewritten", () => {
    for (const [c, e] of [
      ["HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", { add: [["Connection", "close"]] }],
      ["HTTP/1.1 200 OK\r\nServer : x\r\nContent-Length: 0\r\n\r\n", {}],
    ] as [string, HeadEdits][]) {
      const bytes = enc(c);
      expect(compactInPlace(response(bytes), e)).toBe(-1);
      expect(text(bytes)).toBe(c);
    }
  });
});
