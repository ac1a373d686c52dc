import { describe, expect, test } from "bun:test";
import { ByteQueue } from "../../src/net/byte-queue.ts";
import { parseIp } from "../../src/net/ip.ts";
import { encodeProxyHeader } from "../../src/proxy-protocol/encode.ts";
import { parseProxyHeader, type ProxyHeaderStep } from "../../src/proxy-protocol/parse.ts";
import { fixture } from "../helpers/fixtures.ts";

// Captured from HAProxy 2.6.12 on loopback: a tcp frontend (127.0.0.1 and [::1]) whose server line
// had `send-proxy` (v1) or `send-proxy-v2` (v2), a python socket server as the backend writing what
// it received to a file, and a client sending "hello\r\n" (so each fixture is the header, then the
// client's bytes). local-v2 is the health check of `check check-send-proxy`; tlv-v2 adds
// `proxy-v2-options unique-id,authority` with `unique-id-format abc-%ci-%cp` and the client sent "hi\r\n".
const V1_TCP4 = fixture("proxy-protocol-haproxy-tcp4-v1");
const V1_TCP6 = fixture("proxy-protocol-haproxy-tcp6-v1");
const V2_TCP4 = fixture("proxy-protocol-haproxy-tcp4-v2");
const V2_TCP6 = fixture("proxy-protocol-haproxy-tcp6-v2");
const V2_LOCAL = fixture("proxy-protocol-haproxy-local-v2");
const V2_TLV = fixture("proxy-protocol-haproxy-tlv-v2");

const b = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));
const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const SIG = "0d0a0d0a000d0a515549540a";

/** Strip the IpAddress bytes so results compare as plain values. */
function plain(step: ProxyHeaderStep): unknown {
  if (step.kind !== "header") return step;
  const end = (e: typeof step.src) => (e === null ? null : { ip: e.ip, port: e.port, family: e.address.family });
  return { kind: "header", version: step.version, length: step.length, src: end(step.src), dst: end(step.dst) };
}

/**
 * Feed `pieces` through a queue, re-reading after each as the stage does, and return the first
 * answer that is not need-more (or need-more at the end).
 */
function feed(pieces: readonly Uint8Array[]): unknown {
  const q = new ByteQueue(1 << 16, "test");
  for (const p of pieces) {
    q.push(p);
    const step = parseProxyHeader(q.bytes());
    if (step.kind !== "need-more") return plain(step);
  }
  return { kind: "need-more" };
}

/** Whole, one byte at a time, and cut in two at every point: the same answer each way. */
function everyWay(input: Uint8Array): unknown {
  const whole = feed([input]);
  expect(feed(Array.from(input, (_, i) => input.subarray(i, i + 1)))).toEqual(whole);
  for (let cut = 0; cut <= input.length; cut++) expect(feed([input.subarray(0, cut), input.subarray(cut)])).toEqual(whole);
  return whole;
}

describe("parse: HAProxy's headers", () => {
  test("v1 TCP4", () => {
    expect(everyWay(V1_TCP4)).toEqual({ kind: "header", version: 1, length: 44, src: { ip: "127.0.0.1", port: 51450, family: 4 }, dst: { ip: "127.0.0.1", port: 17001, family: 4 } });
    expect(Buffer.from(V1_TCP4.subarray(44)).toString()).toBe("hello\r\n");
  });
  test("v1 TCP6", () => {
    expect(everyWay(V1_TCP6)).toEqual({ kind: "header", version: 1, length: 32, src: { ip: "::1", port: 59926, family: 6 }, dst: { ip: "::1", port: 17001, family: 6 } });
  });
  test("v2 TCP4", () => {
    expect(everyWay(V2_TCP4)).toEqual({ kind: "header", version: 2, length: 28, src: { ip: "127.0.0.1", port: 41606, family: 4 }, dst: { ip: "127.0.0.1", port: 17002, family: 4 } });
    expect(Buffer.from(V2_TCP4.subarray(28)).toString()).toBe("hello\r\n");
  });
  test("v2 TCP6", () => {
    expect(everyWay(V2_TCP6)).toEqual({ kind: "header", version: 2, length: 52, src: { ip: "::1", port: 43986, family: 6 }, dst: { ip: "::1", port: 17002, family: 6 } });
  });
  test("v2 LOCAL (a health check): the connection's own endpoints", () => {
    expect(everyWay(V2_LOCAL)).toEqual({ kind: "header", version: 2, length: 16, src: null, dst: null });
  });
  test("v2 with TLVs (unique id, authority): skipped, the length covers them", () => {
    expect(everyWay(V2_TLV)).toEqual({ kind: "header", version: 2, length: 50, src: { ip: "127.0.0.1", port: 39924, family: 4 }, dst: { ip: "127.0.0.1", port: 17002, family: 4 } });
    expect(Buffer.from(V2_TLV.subarray(50)).toString()).toBe("hi\r\n");
  });
  test("a start offset", () => {
    const input = new Uint8Array([9, 9, 9, ...V2_TCP4]);
    expect(plain(parseProxyHeader(input, 3))).toMatchObject({ kind: "header", length: 28 });
  });
});

describe("parse: v1 edge cases accepted", () => {
  test("UNKNOWN with or without addresses: the connection's own endpoints", () => {
    expect(everyWay(b("PROXY UNKNOWN\r\n"))).toEqual({ kind: "header", version: 1, length: 15, src: null, dst: null });
    expect(everyWay(b("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"))).toEqual({ kind: "header", version: 1, length: 107, src: null, dst: null });
  });
  test("TCP6 with an IPv4-mapped address names the IPv4 client", () => {
    expect(everyWay(b("PROXY TCP6 ::ffff:10.1.2.3 ::ffff:10.0.0.1 1 65535\r\n"))).toMatchObject({ src: { ip: "10.1.2.3", port: 1, family: 4 }, dst: { ip: "10.0.0.1", port: 65535 } });
  });
  test("port 0", () => {
    expect(everyWay(b("PROXY TCP4 1.2.3.4 5.6.7.8 0 0\r\n"))).toMatchObject({ src: { port: 0 }, dst: { port: 0 } });
  });
});

describe("parse: every rejection, with its bytes", () => {
  const cases: [string, Uint8Array, string][] = [
    ["not a header (an SMTP command)", b("EHLO x\r\n"), "not_proxy_header"],
    ["lower-case proxy", b("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), "not_proxy_header"],
    ["PROXY without its space", b("PROXYTCP4\r\n"), "not_proxy_header"],
    ["v1 with no CRLF in 107 bytes", b(`PROXY UNKNOWN ${"a".repeat(120)}`), "v1_too_long"],
    ["v1 of 108 bytes", b(`PROXY UNKNOWN ${"a".repeat(92)}\r\n`), "v1_too_long"],
    ["v1 bare LF", b("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), "v1_bad_line_end"],
    ["v1 CR inside the line", b("PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n"), "v1_bad_line_end"],
    ["v1 unknown protocol", b("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), "v1_bad_protocol"],
    ["v1 protocol in lower case", b("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"), "v1_bad_protocol"],
    ["v1 missing port", b("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), "v1_bad_fields"],
    ["v1 extra field", b("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), "v1_bad_fields"],
    ["v1 protocol alone", b("PROXY TCP4\r\n"), "v1_bad_fields"],
    ["v1 two spaces", b("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), "v1_bad_fields"],
    ["v1 IPv6 under TCP4", b("PROXY TCP4 ::1 ::1 1 2\r\n"), "v1_bad_address"],
    ["v1 IPv4 under TCP6", b("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"), "v1_bad_address"],
    ["v1 octet over 255", b("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"), "v1_bad_address"],
    ["v1 leading zero in an octet", b("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"), "v1_bad_address"],
    ["v1 bracketed IPv6", b("PROXY TCP6 [::1] ::1 1 2\r\n"), "v1_bad_address"],
    ["v1 IPv6 zone", b("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), "v1_bad_address"],
    ["v1 host name", b("PROXY TCP4 localhost 5.6.7.8 1 2\r\n"), "v1_bad_address"],
    ["v1 port over 65535", b("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), "v1_bad_port"],
    ["v1 port with a leading zero", b("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"), "v1_bad_port"],
    ["v1 negative port", b("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"), "v1_bad_port"],
    ["v1 hex port", b("PROXY TCP4 1.2.3.4 5.6.7.8 0x10 2\r\n"), "v1_bad_port"],
    ["v2 signature wrong in its last byte", hex(`0d0a0d0a000d0a515549540b 2111000c 7f000001 7f000001 0001 0002`), "not_proxy_header"],
    ["v2 version 1", hex(`${SIG} 1111000c 7f000001 7f000001 0001 0002`), "v2_bad_version"],
    ["v2 version 3", hex(`${SIG} 3111000c 7f000001 7f000001 0001 0002`), "v2_bad_version"],
    ["v2 command 2", hex(`${SIG} 2211000c 7f000001 7f000001 0001 0002`), "v2_bad_command"],
    ["v2 family 4", hex(`${SIG} 2141000c 7f000001 7f000001 0001 0002`), "v2_bad_family"],
    ["v2 transport 3", hex(`${SIG} 2113000c 7f000001 7f000001 0001 0002`), "v2_bad_family"],
    ["v2 INET without transport", hex(`${SIG} 2110000c 7f000001 7f000001 0001 0002`), "v2_bad_family"],
    ["v2 UDP over IPv4", hex(`${SIG} 2112000c 7f000001 7f000001 0001 0002`), "v2_not_stream"],
    ["v2 UDP over IPv6", hex(`${SIG} 21220024 ${"00".repeat(36)}`), "v2_not_stream"],
    ["v2 unix datagram", hex(`${SIG} 213200d8 ${"00".repeat(216)}`), "v2_not_stream"],
    ["v2 TCP4 with 11 address bytes", hex(`${SIG} 2111000b 7f000001 7f000001 0001 00`), "v2_short_addresses"],
    ["v2 TCP6 with the TCP4 length", hex(`${SIG} 2121000c 7f000001 7f000001 0001 0002`), "v2_short_addresses"],
    ["v2 longer than 4096 bytes", hex(`${SIG} 21110ff1`), "v2_too_long"],
    ["v2 TLV longer than the header", hex(`${SIG} 21110010 7f000001 7f000001 0001 0002 040005 00`), "v2_bad_tlv"],
    ["v2 TLV header cut short", hex(`${SIG} 2111000e 7f000001 7f000001 0001 0002 0400`), "v2_bad_tlv"],
  ];
  for (const [name, bytes, reason] of cases) {
    test(`${name}: ${reason}`, () => {
      expect(everyWay(bytes)).toEqual({ kind: "error", reason });
    });
  }

  test("a rejection comes as soon as the bytes rule a header out (no waiting for more)", () => {
    expect(parseProxyHeader(b("X")).kind).toBe("error");
    expect(parseProxyHeader(b("PROXY_")).kind).toBe("error");
    expect(parseProxyHeader(hex("0d0a0d0a01")).kind).toBe("error");
    expect(plain(parseProxyHeader(hex(`${SIG} 21110ff1`)))).toEqual({ kind: "error", reason: "v2_too_long" }); // before the body arrives
    expect(parseProxyHeader(b("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r")).kind).toBe("need-more");
  });

  test("the v2 bound is the caller's", () => {
    expect(parseProxyHeader(V2_TLV, 0, { maxV2Bytes: 49 })).toEqual({ kind: "error", reason: "v2_too_long" });
    expect(parseProxyHeader(V2_TLV, 0, { maxV2Bytes: 50 }).kind).toBe("header");
  });

  test("LOCAL ignores the family byte and skips its address block", () => {
    expect(everyWay(hex(`${SIG} 20ff0004 01020304`))).toEqual({ kind: "header", version: 2, length: 20, src: null, dst: null });
  });
  test("AF_UNSPEC and unix stream under PROXY: the connection's own endpoints", () => {
    expect(everyWay(hex(`${SIG} 21000000`))).toEqual({ kind: "header", version: 2, length: 16, src: null, dst: null });
    expect(everyWay(hex(`${SIG} 21000003 ffffff`))).toEqual({ kind: "header", version: 2, length: 19, src: null, dst: null });
    expect(everyWay(hex(`${SIG} 213100d8 ${"00".repeat(216)}`))).toEqual({ kind: "header", version: 2, length: 232, src: null, dst: null });
  });
  test("empty input and a bare prefix are need-more", () => {
    expect(parseProxyHeader(new Uint8Array(0))).toEqual({ kind: "need-more" });
    expect(parseProxyHeader(b("PROX"))).toEqual({ kind: "need-more" });
    expect(parseProxyHeader(hex(SIG))).toEqual({ kind: "need-more" });
  });
});

describe("encode", () => {
  const ep = (ip: string, port: number) => ({ ip: parseIp(ip)!, port });

  test("v1 TCP4: the bytes HAProxy sends for the same connection", () => {
    expect(encodeProxyHeader("v1", ep("127.0.0.1", 51450), ep("127.0.0.1", 17001))).toEqual(V1_TCP4.subarray(0, 44));
  });
  test("v1 TCP6", () => {
    expect(encodeProxyHeader("v1", ep("::1", 59926), ep("::1", 17001))).toEqual(V1_TCP6.subarray(0, 32));
  });
  test("v2 TCP4 and TCP6: HAProxy's bytes", () => {
    expect(encodeProxyHeader("v2", ep("127.0.0.1", 41606), ep("127.0.0.1", 17002))).toEqual(V2_TCP4.subarray(0, 28));
    expect(encodeProxyHeader("v2", ep("::1", 43986), ep("::1", 17002))).toEqual(V2_TCP6.subarray(0, 52));
  });
  test("IPv4-mapped peers of a dual-stack socket are written as IPv4", () => {
    expect(Buffer.from(encodeProxyHeader("v1", ep("::ffff:10.1.2.3", 1000), ep("::ffff:10.0.0.1", 25))).toString()).toBe("PROXY TCP4 10.1.2.3 10.0.0.1 1000 25\r\n");
    expect(encodeProxyHeader("v2", ep("::ffff:10.1.2.3", 1000), ep("::ffff:10.0.0.1", 25))).toEqual(hex(`${SIG} 2111000c 0a010203 0a000001 03e8 0019`));
  });
  test("mixed families: both as IPv6 (one family per header)", () => {
    expect(Buffer.from(encodeProxyHeader("v1", ep("10.1.2.3", 1), ep("2001:db8::1", 2))).toString()).toBe("PROXY TCP6 ::ffff:10.1.2.3 2001:db8::1 1 2\r\n");
  });
  test("no client address (a unix-socket client): UNKNOWN / AF_UNSPEC", () => {
    expect(Buffer.from(encodeProxyHeader("v1", null, ep("::1", 2))).toString()).toBe("PROXY UNKNOWN\r\n");
    expect(encodeProxyHeader("v2", null, null)).toEqual(hex(`${SIG} 21000000`));
  });
  test("what is encoded parses back to the same addresses", () => {
    for (const v of ["v1", "v2"] as const) {
      for (const [s, d] of [["192.0.2.1", "198.51.100.2"], ["2001:db8::5", "fe80::1"], ["255.255.255.255", "0.0.0.0"]] as const) {
        const bytes = encodeProxyHeader(v, ep(s, 65535), ep(d, 0));
        expect(plain(parseProxyHeader(bytes))).toMatchObject({ kind: "header", length: bytes.length, src: { ip: s, port: 65535 }, dst: { ip: d, port: 0 } });
      }
    }
  });
});
