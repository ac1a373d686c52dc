/**
 * An HTTP/1.1 backend that reports what it received: for each request on a connection, the exact head
 * bytes and the body's bytes (Content-Length counted, chunked decoded, the chunked framing itself also
 * kept), answered with `200` and a JSON body `{ head, body, framing }` (latin1 strings) and kept in
 * `received` in order. Deliberately simple (it trusts the proxy in front to have validated the
 * framing); it must not be what is tested. Bun sockets on loopback; stop() by the caller.
 */
import type { Socket } from "bun";

export interface Received {
  /** The head as it came, start line to the empty line, CRLFs included. */
  head: string;
  /** The body's content (decoded from chunked). */
  body: string;
  /** How the body was framed: "none", "length", "chunked" (with `raw` the chunked bytes as they came). */
  framing: "none" | "length" | "chunked";
  raw: string;
}

export interface EchoBackend {
  readonly port: number;
  readonly received: Received[];
  stop(): void;
}

const latin1 = (b: Uint8Array) => Buffer.from(b).toString("latin1");

/** Where a chunked body that starts at `at` ends in `s` (after its trailer), and its content; null if not whole yet. */
function chunkedEnd(s: string, at: number): { end: number; body: string } | null {
  let body = "";
  for (;;) {
    const eol = s.indexOf("\r\n", at);
    if (eol < 0) return null;
    const size = parseInt(s.slice(at, eol).split(";")[0]!.trim(), 16);
    if (Number.isNaN(size)) return { end: s.length, body }; // malformed: take what there is
    at = eol + 2;
    if (size === 0) {
      // Trailer fields, then the empty line.
      for (;;) {
        const e = s.indexOf("\r\n", at);
        if (e < 0) return null;
        if (e === at) return { end: e + 2, body };
        at = e + 2;
      }
    }
    if (s.length < at + size + 2) return null;
    body += s.slice(at, at + size);
    at += size + 2;
  }
}

export function startEchoBackend(options: { answer?: (r: Received) => string } = {}): EchoBackend {
  const received: Received[] = [];
  const server = Bun.listen<{ buf: string }>({
    hostname: "127.0.0.1", port: 0,
    socket: {
      binaryType: "uint8array",
      open(s) { s.data = { buf: "" }; },
      data(s: Socket<{ buf: string }>, d: Uint8Array) {
        s.data.buf += latin1(d);
        for (;;) {
          const buf = s.data.buf;
          const headEnd = buf.indexOf("\r\n\r\n");
          if (headEnd < 0) return;
          const head = buf.slice(0, headEnd + 4);
          const te = /\r\ntransfer-encoding:[^\r]*chunked/i.test(head);
          const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
          let end: number, body: string, framing: Received["framing"];
          if (te) {
            const c = chunkedEnd(buf, headEnd + 4);
            if (!c) return;
            end = c.end; body = c.body; framing = "chunked";
          } else if (cl) {
            end = headEnd + 4 + Number(cl[1]);
            if (buf.length < end) return;
            body = buf.slice(headEnd + 4, end); framing = "length";
          } else {
            end = headEnd + 4; body = ""; framing = "none";
          }
          const r: Received = { head, body, framing, raw: buf.slice(headEnd + 4, end) };
          received.push(r);
          s.data.buf = buf.slice(end);
          const payload = Buffer.from(options.answer ? options.answer(r) : JSON.stringify(r), "latin1");
          s.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${payload.length}\r\nX-Backend: echo\r\n\r\n`), payload]));
        }
      },
    },
  });
  return { port: server.port, received, stop: () => server.stop(true) };
}
