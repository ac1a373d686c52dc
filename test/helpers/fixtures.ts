/** Captured bytes of real clients and servers (test/fixtures/*.hex: hex, any whitespace, `#` comment lines). */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export function fixture(name: string): Uint8Array {
  const hex = readFileSync(join(import.meta.dir, "../fixtures", `${name}.hex`), "utf8").replace(/^#.*$/gm, "").replace(/\s+/g, "");
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** Re-frame a single-record hello as one TLS record per payload byte (legal per RFC 8446 §5.1). */
export function oneBytePerRecord(hello: Uint8Array): Uint8Array {
  const payload = hello.subarray(5, 5 + ((hello[3]! << 8) | hello[4]!));
  const out = new Uint8Array(payload.length * 6);
  payload.forEach((b, i) => out.set([22, hello[1]!, hello[2]!, 0, 1, b], i * 6));
  return out;
}

// https://www.rfc-editor.org/rfc/rfc7685 (the padding extension: any number of zero bytes)
const EXT_PADDING = 21;

/**
 * A single-record hello grown with a padding extension until its handshake message (4-byte header
 * and body) is `messageBytes` long; the input must have an extension block and no padding yet.
 */
export function padHello(hello: Uint8Array, messageBytes: number): Uint8Array {
  const message = hello.subarray(5, 5 + ((hello[3]! << 8) | hello[4]!));
  const grow = messageBytes - message.length;
  if (grow < 4) throw new Error(`padHello: ${messageBytes} is not at least 4 bytes longer than the hello`);
  const out = new Uint8Array(5 + messageBytes);
  out.set(hello.subarray(0, 5));
  out.set(message, 5);
  out.set([EXT_PADDING >> 8, EXT_PADDING & 0xff, (grow - 4) >> 8, (grow - 4) & 0xff], 5 + message.length); // the rest stays zero
  const view = new DataView(out.buffer);
  view.setUint16(3, messageBytes); // record length
  view.setUint32(5, (1 << 24) | (messageBytes - 4)); // client_hello, body length
  // The extensions block ends the body: its length is the last field before the extensions.
  const extStart = extensionsOffset(message);
  view.setUint16(5 + extStart, view.getUint16(5 + extStart) + grow);
  return out;
}

/** Offset of the extensions' length field inside a ClientHello handshake message. */
function extensionsOffset(m: Uint8Array): number {
  let pos = 4 + 2 + 32; // header, version, random
  pos += 1 + m[pos]!; // session id
  pos += 2 + ((m[pos]! << 8) | m[pos + 1]!); // cipher suites
  pos += 1 + m[pos]!; // compression methods
  return pos;
}
