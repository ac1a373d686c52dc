import { expect, test } from "bun:test";
import { alpnWire } from "../../src/tls/options.ts";

test("ALPN protocols in RFC 7301 wire format (length-prefixed)", () => {
  expect([...alpnWire(["h2", "http/1.1"])]).toEqual([2, 0x68, 0x32, 8, ...new TextEncoder().encode("http/1.1")]);
  expect([...alpnWire(["postgresql"])]).toEqual([10, ...new TextEncoder().encode("postgresql")]);
});
