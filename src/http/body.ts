/**
 * How long a message body is, decided from its head (RFC 9112 §6.3). Getting a response's wrong
 * desynchronises a pooled upstream connection, so the rules are in one place, in the RFC's order.
 * Pure.
 * @module
 */
import type { RequestHead, ResponseHead } from "./head.ts";

/**
 * - `none`: the message ends with its head (also a Content-Length of 0).
 * - `length`: exactly `head.contentLength` bytes follow.
 * - `chunked`: a chunked body follows (frame it with ChunkedFramer); trailers end it.
 */
export type RequestBody = "none" | "length" | "chunked";

/**
 * A request's body (RFC 9112 §6.3 ¶4-¶7). The parser has already refused every ambiguous request
 * (Transfer-Encoding without chunked last, beside Content-Length, or on HTTP/1.0), so what is left is
 * chunked, a length, or nothing: "if neither is present, the request has no body" (¶7).
 */
export function requestBody(head: RequestHead): RequestBody {
  if (head.chunked) return "chunked";
  return head.contentLength > 0 ? "length" : "none";
}

/**
 * The RequestBody kinds, and:
 * - `close`: the body is everything until the upstream closes (¶8); the client connection must end
 *   after it, since nothing else can tell the client where it stops.
 * - `tunnel`: no body; after the head the connection carries another protocol (101 to an Upgrade,
 *   2xx to CONNECT: ¶2).
 */
export type ResponseBody = RequestBody | "close" | "tunnel";

/**
 * A response's body, given the method of the request it answers (RFC 9112 §6.3):
 * ¶1 HEAD, 1xx, 204 and 304 have none whatever the fields say; ¶2 CONNECT 2xx is a tunnel;
 * ¶4 Transfer-Encoding with chunked last is chunked, any other Transfer-Encoding reads until close
 * (¶3: it overrides Content-Length, which the parser already dropped); ¶6 Content-Length; ¶8 else
 * until close.
 */
export function responseBody(head: ResponseHead, requestMethod: string): ResponseBody {
  const status = head.status;
  if (status === 101) return "tunnel";
  if (status < 200 || status === 204 || status === 304 || requestMethod === "HEAD") return "none";
  if (requestMethod === "CONNECT" && status < 300) return "tunnel";
  if (head.hasTransferEncoding) return head.chunked ? "chunked" : "close";
  if (head.contentLength >= 0) return head.contentLength > 0 ? "length" : "none";
  return "close";
}
