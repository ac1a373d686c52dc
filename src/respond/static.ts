/**
 * The `respond` route action: answer an HTTP request with a fixed response and close. It is what
 * the embedded default serves, and it suits health-check ports. It waits for the end of the request
 * head so the client's bytes are read before closing (closing with unread bytes sends RST, which can
 * destroy the response in flight).
 * @module
 */
import type { Conn } from "../proxy/conn.ts";
import { concatBytes as concat, indexOfBytes as indexOf } from "../net/bytes.ts";

/** A request head larger than this is not a request we answer politely; respond anyway and close. */
const MAX_REQUEST_HEAD = 16 * 1024;
const HEAD_END = new Uint8Array([13, 10, 13, 10]);

/** Feed client bytes (null at the client's FIN); answers once the head is complete. */
export function respondData(conn: Conn, chunk: Uint8Array | null): void {
  if (conn.reason !== null) return;
  const head = conn.upQueue();
  // Past the bound the push fails, and the answer goes out anyway.
  if (chunk && head.push(chunk) && indexOf(head.bytes(), HEAD_END) < 0 && head.size < MAX_REQUEST_HEAD) return;
  conn.because("responded");
  head.clear();
  const response = renderResponse(conn.route!.config.respond!);
  conn.bytesOut += response.length;
  conn.client.end(response);
}

const encoder = new TextEncoder();
const cache = new WeakMap<object, Uint8Array>();

function renderResponse(r: { status: number; contentType: string; body: string }): Uint8Array {
  let bytes = cache.get(r);
  if (!bytes) {
    const body = encoder.encode(r.body);
    const head = `HTTP/1.1 ${r.status} ${STATUS_TEXT[r.status] ?? "Status"}\r\ncontent-type: ${r.contentType}\r\n` +
      `content-length: ${body.length}\r\nconnection: close\r\nserver: switchyard\r\n\r\n`;
    bytes = concat(encoder.encode(head), body);
    cache.set(r, bytes);
  }
  return bytes;
}

const STATUS_TEXT: Record<number, string> = { 200: "OK", 204: "No Content", 403: "Forbidden", 404: "Not Found", 503: "Service Unavailable" };
