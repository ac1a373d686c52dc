import { describe, expect, test } from "bun:test";
import { buildResponse, errorResponse, redirectResponse, renderTemplate, respondResponse } from "../../src/http/answers.ts";
import { forwardedEdits } from "../../src/http/forwarded.ts";
import { RequestHead } from "../../src/http/head.ts";
import { parseRequestHead } from "../../src/http/parse-head.ts";

const dec = new TextDecoder();
const V = { host: "a.example", path: "/x?y=1", client: "192.0.2.7" };

describe("answers", () => {
  test("templates: {host} {path} {client}; other braces stay", () => {
    expect(renderTemplate("https://{host}{path} from {client} {other}", V)).toBe("https://a.example/x?y=1 from 192.0.2.7 {other}");
    expect(renderTemplate("plain", V)).toBe("plain");
  });

  test("an error answer names its reason, says its length, and closes", () => {
    expect(dec.decode(errorResponse(400, "bare_lf", true))).toBe(
      "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 25\r\nconnection: close\r\n\r\n400 Bad Request: bare_lf\n",
    );
  });

  test("a HEAD request gets the length without the body (RFC 9110 §9.3.2)", () => {
    const text = dec.decode(buildResponse(200, [], "hello", false, true));
    expect(text).toBe("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n");
  });

  test("respond: content type, extra fields with templates, body with templates", () => {
    const text = dec.decode(respondResponse({ status: 200, contentType: "text/plain", body: "edge {host}{path}", headers: [["x-edge", "{client}"]] }, V, false, false));
    expect(text).toBe("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-edge: 192.0.2.7\r\ncontent-length: 20\r\n\r\nedge a.example/x?y=1");
  });

  test("redirect: Location from the template", () => {
    const text = dec.decode(redirectResponse(308, "https://{host}{path}", V, true, false));
    expect(text).toStartWith("HTTP/1.1 308 Permanent Redirect\r\nlocation: https://a.example/x?y=1\r\n");
    expect(text).toContain("connection: close\r\n");
  });
});

function head(text: string): RequestHead {
  const h = new RequestHead({ maxHeaderBytes: 4096, maxHeaders: 32 });
  const r = parseRequestHead(new TextEncoder().encode(text), 0, h);
  if (r.kind !== "head") throw new Error(JSON.stringify(r));
  return h;
}

describe("X-Forwarded-*", () => {
  const withXff = "GET / HTTP/1.1\r\nHost: a.example:8080\r\nX-Forwarded-For: 10.1.1.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: front.example\r\n\r\n";
  test("append, from a trusted peer: its list plus the peer; its proto and host kept", () => {
    expect(forwardedEdits(head(withXff), "append", "10.0.0.5", true, "http")).toEqual([
      ["X-Forwarded-For", "10.1.1.1, 10.0.0.5"], ["X-Forwarded-Proto", "https"], ["X-Forwarded-Host", "front.example"],
    ]);
  });
  test("append, from anyone else: the client alone, our proto, the request's host", () => {
    expect(forwardedEdits(head(withXff), "append", "198.51.100.9", false, "http")).toEqual([
      ["X-Forwarded-For", "198.51.100.9"], ["X-Forwarded-Proto", "http"], ["X-Forwarded-Host", "a.example:8080"],
    ]);
  });
  test("replace: the client alone even from a trusted peer", () => {
    expect(forwardedEdits(head(withXff), "replace", "10.0.0.5", true, "http")![0]).toEqual(["X-Forwarded-For", "10.0.0.5"]);
  });
  test("off: nothing", () => {
    expect(forwardedEdits(head(withXff), "off", "10.0.0.5", true, "http")).toBeNull();
  });
});
