/** Captured first bytes of real clients (test/fixtures/*.hex: hex, any whitespace). */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export function fixture(name: string): Uint8Array {
  const hex = readFileSync(join(import.meta.dir, "../fixtures", `${name}.hex`), "utf8").replace(/\s+/g, "");
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** Re-frame a single-record hello as one TLS record per payload byte (legal per RFC 8446 §5.1). */
export function oneBytePerRecord(hello: Uint8Array): Uint8Array {
  const payload = hello.subarray(5, 5 + ((hello[3]! << 8) | hello[4]!));
  const out = new Uint8Array(payload.length * 6);
  payload.forEach((b, i) => out.set([22, hello[1]!, hello[2]!, 0, 1, b], i * 6));
  return out;
}
