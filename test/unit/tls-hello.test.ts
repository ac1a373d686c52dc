import { describe, expect, test } from "bun:test";
import { MAX_HANDSHAKE_MESSAGE, sniffClientHello, type ClientHello } from "../../src/sniff/tls-hello.ts";
import { collectorFull, MAX_SNIFF_BYTES, newCollector } from "../../src/sniff/collect.ts";
import { fixture, oneBytePerRecord, padHello } from "../helpers/fixtures.ts";

function facts(bytes: Uint8Array): ClientHello {
  const r = sniffClientHello(bytes);
  if (r.kind !== "match") throw new Error(`expected a match, got ${JSON.stringify(r)}`);
  return r.facts;
}

/** Feed the bytes one at a time, as a slow client's reads: need-more until the last byte. */
function byteByByte(bytes: Uint8Array): ClientHello {
  for (let n = 1; n < bytes.length; n++) expect(sniffClientHello(bytes.subarray(0, n)).kind).toBe("need-more");
  return facts(bytes);
}

const openssl = fixture("hello-openssl"); // openssl s_client -servername api.example.com -alpn h2,http/1.1
const curl = fixture("hello-curl"); // curl https://www.example.com:PORT/
const tls12 = fixture("hello-openssl-tls12"); // openssl s_client -tls1_2 -noservername

describe("real captured hellos", () => {
  test("openssl s_client: SNI, ALPN, versions, lists (the lists as tshark 4.0.17 shows them)", () => {
    const h = facts(openssl);
    expect(h.sni).toBe("api.example.com");
    expect(h.alpn).toEqual(["h2", "http/1.1"]);
    expect(h.version).toBe(0x0303);
    expect(h.supportedVersions).toEqual([0x0304, 0x0303, 0x0302, 0x0301]);
    expect(h.extensions).toEqual([0, 11, 10, 35, 16, 22, 23, 13, 43, 45, 51]);
    expect(h.groups).toEqual([29, 23, 30, 25, 24, 256, 257, 258, 259, 260]);
    expect(h.pointFormats).toEqual([0, 1, 2]);
    expect(h.ciphers.slice(0, 3)).toEqual([4866, 4867, 4865]);
    expect(h.ciphers.length).toBe(31);
    expect(h.recordBytes).toBe(openssl.length);
  });

  test("curl: SNI and ALPN", () => {
    const h = facts(curl);
    expect(h.sni).toBe("www.example.com");
    expect(h.alpn).toEqual(["h2", "http/1.1"]);
    expect(h.extensions).toEqual([0, 11, 10, 16, 22, 23, 49, 13, 43, 45, 51, 21]);
  });

  test("TLS 1.2 only, no SNI", () => {
    const h = facts(tls12);
    expect(h.sni).toBeNull();
    expect(h.alpn).toEqual([]);
    expect(h.supportedVersions).toEqual([]);
  });

  for (const [name, bytes] of [["openssl", openssl], ["curl", curl], ["tls12", tls12]] as const) {
    test(`${name}: one byte at a time gives need-more, then the same facts`, () => {
      expect(byteByByte(bytes)).toEqual(facts(bytes));
    });

    test(`${name}: split into one-byte records gives the same facts`, () => {
      const split = oneBytePerRecord(bytes);
      const h = facts(split);
      expect({ ...h, recordBytes: 0 }).toEqual({ ...facts(bytes), recordBytes: 0 });
      expect(h.recordBytes).toBe(split.length);
    });
  }

  test("one-byte records read one byte at a time", () => {
    byteByByte(oneBytePerRecord(tls12));
  });

  test("bytes after the hello (early data) are not part of it", () => {
    const more = new Uint8Array([...openssl, 23, 3, 3, 0, 1, 0]);
    expect(facts(more).recordBytes).toBe(openssl.length);
  });
});

describe("named reasons", () => {
  const reason = (bytes: Uint8Array | number[]) => {
    const r = sniffClientHello(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
    return r.kind === "no-match" ? r.reason : r.kind;
  };

  test("not TLS", () => {
    expect(reason(new TextEncoder().encode("GET / HTTP/1.1\r\n"))).toBe("not_tls");
    expect(reason([0x80, 0x2e, 0x01])).toBe("sslv2_hello");
  });

  test("record framing", () => {
    expect(reason([22, 3, 1, 0x40, 0x01])).toBe("record_too_long");
    expect(reason([22, 3, 1, 0, 0])).toBe("empty_record");
    expect(reason([22, 2, 0, 0, 4, 1, 0, 0, 0])).toBe("bad_record_version");
    expect(reason([22, 3, 1, 0, 4, 2, 0, 0, 0])).toBe("not_client_hello");
    expect(reason([22, 3, 1, 0, 4, 1, 0, 0x40, 0])).toBe("hello_too_long");
    // the header's type is known from a partial record already
    expect(reason([22, 3, 1, 0, 100, 2, 0, 0, 90])).toBe("not_client_hello");
  });

  test("a non-handshake record in the middle", () => {
    const split = oneBytePerRecord(tls12);
    split[6 * 10] = 23;
    expect(reason(split)).toBe("non_handshake_record");
  });

  test("lengths that disagree with the message", () => {
    const bad = openssl.slice();
    bad[5 + 4 + 2 + 32] = 33; // session id longer than 32
    expect(reason(bad)).toBe("bad_session_id");
    const cut = openssl.slice();
    // Shrink the handshake length by 10 and the record length with it: the extensions overrun.
    const hsLen = ((cut[6]! << 16) | (cut[7]! << 8) | cut[8]!) - 10;
    cut[6] = hsLen >> 16; cut[7] = (hsLen >> 8) & 0xff; cut[8] = hsLen & 0xff;
    const recLen = hsLen + 4;
    cut[3] = recLen >> 8; cut[4] = recLen & 0xff;
    expect(reason(cut.subarray(0, 5 + recLen))).toBe("truncated_extensions");
  });

  test("a server name with a NUL or a slash is refused", () => {
    const i = Buffer.from(openssl).indexOf("api.example.com");
    const nul = openssl.slice();
    nul[i + 3] = 0;
    expect(reason(nul)).toBe("bad_server_name");
    const slash = openssl.slice();
    slash[i + 3] = 0x2f;
    expect(reason(slash)).toBe("bad_server_name");
  });

  test("upper case and a trailing dot are normalised", () => {
    const i = Buffer.from(openssl).indexOf("api.example.com");
    const upper = openssl.slice();
    upper.set(new TextEncoder().encode("API.EXAMPLE.CO."), i);
    expect(facts(upper).sni).toBe("api.example.co");
  });
});

describe("size bounds count the hello, not its framing", () => {
  test("a hello of 2^14 bytes in one record (the most one record carries) is read; one byte more is refused", () => {
    const big = padHello(openssl, MAX_HANDSHAKE_MESSAGE);
    expect(big.length).toBe(5 + 16_384);
    expect(facts(big).sni).toBe("api.example.com");
    expect(facts(padHello(openssl, 16_376)).sni).toBe("api.example.com"); // the size the bug report refused
    // 2^14 + 1 needs two records; the handshake header alone says it is too long.
    const over = big.slice();
    over[8] = over[8]! + 1; // the body length's low byte
    expect(sniffClientHello(over.subarray(0, 9))).toEqual({ kind: "no-match", reason: "hello_too_long" });
  });

  test("the longest hello, one byte per record, collected as it comes: read whole, never cut off by the collector", () => {
    const split = oneBytePerRecord(padHello(openssl, MAX_HANDSHAKE_MESSAGE));
    expect(split.length).toBe(MAX_SNIFF_BYTES);
    const collected = newCollector();
    for (let pos = 0; pos < split.length; pos += 6000) {
      collected.push(split.subarray(pos, pos + 6000));
      const r = sniffClientHello(collected.bytes());
      if (pos + 6000 < split.length) expect([collectorFull(collected), r.kind]).toEqual([false, "need-more"]);
      else expect(r.kind).toBe("match");
    }
  });

  test("a 3 000-byte hello in 1-byte records (refused before: 18 000 bytes read)", () => {
    expect(facts(oneBytePerRecord(padHello(openssl, 3000))).sni).toBe("api.example.com");
  });
});
