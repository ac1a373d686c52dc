import { describe, expect, test } from "bun:test";
import { CidrSet, cidrContains, formatIp, parseCidr, parseIp, unmapIpv4 } from "../../src/net/ip.ts";
import type { Cidr, IpAddress } from "../../src/net/ip.ts";

/** Parses or fails the test: the vectors below are all valid. */
function ip(text: string): IpAddress {
  const parsed = parseIp(text);
  if (parsed === null) throw new Error(`test vector does not parse: ${text}`);
  return parsed;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (parsed === null) throw new Error(`test prefix does not parse: ${text}`);
  return parsed;
}

describe("parseIp", () => {
  test.each([
    ["0.0.0.0", [0, 0, 0, 0]],
    ["1.2.3.4", [1, 2, 3, 4]],
    ["255.255.255.255", [255, 255, 255, 255]],
    ["10.0.0.10", [10, 0, 0, 10]],
  ])("IPv4 %p", (text, bytes) => {
    expect(parseIp(text)).toEqual({ family: 4, bytes: Uint8Array.from(bytes) });
  });

  test.each([
    ["::", "00000000000000000000000000000000"],
    ["::1", "00000000000000000000000000000001"],
    ["1::", "00010000000000000000000000000000"],
    ["2001:db8::ff00:42:8329", "20010db8000000000000ff0000428329"],
    ["2001:0DB8:0000:0000:0000:FF00:0042:8329", "20010db8000000000000ff0000428329"],
    ["1:2:3:4:5:6:7:8", "00010002000300040005000600070008"],
    ["1:2:3:4:5:6:7::", "00010002000300040005000600070000"],
    ["::2:3:4:5:6:7:8", "00000002000300040005000600070008"],
    ["::ffff:1.2.3.4", "00000000000000000000ffff01020304"],
    ["64:ff9b::192.0.2.33", "0064ff9b0000000000000000c0000221"],
    ["::1.2.3.4", "00000000000000000000000001020304"],
    ["1:2:3:4:5:6:1.2.3.4", "00010002000300040005000601020304"],
    ["[::1]", "00000000000000000000000000000001"],
    ["fe80::1%eth0", "fe800000000000000000000000000001"],
    ["[fe80::1%eth0]", "fe800000000000000000000000000001"],
    ["fe80::1%25", "fe800000000000000000000000000001"],
  ])("IPv6 %p", (text, bytes) => {
    const parsed = ip(text);
    expect(parsed.family).toBe(6);
    expect(hex(parsed.bytes)).toBe(bytes);
  });

  test.each([
    "", "abc", "1.2.3", "256.1.1.1", "1.2.3.4.5", "01.2.3.4", "1.2.3.04", "1.2.3.-1", "1.2.3.+4",
    "0x7f.0.0.1", "127.1", "2130706433", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4.", ".1.2.3.4", "1..2.3",
    "1.2.3.4/32", "[1.2.3.4]", "1.2.3.4%eth0", "１.2.3.4", "1000.2.3.4",
    ":::", "1::2::3", "::1::", ":", ":1::", "1::2:", ":1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:",
    "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8",
    "12345::", "g::", "::-1", "::1 ", " ::1", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3", "::256.1.1.1",
    "::01.2.3.4", "::1.2.3.4:5", "1.2.3.4::", "::1.2.3.4.5", "[::1", "::1]", "[[::1]]", "[::1]:80",
    "fe80::1%", "fe80::1%eth 0", "fe80::1%eth0%eth1", "::ffff:1.2.3.4/96",
    "0000:0000:0000:0000:0000:0000:0000:0000:0000", "1:2:3:4:5:6:7:8" + "0".repeat(100),
  ])("rejects %p", (text) => {
    expect(parseIp(text)).toBeNull();
  });
});

describe("formatIp", () => {
  test.each([
    ["1.2.3.4", "1.2.3.4"],
    ["0.0.0.0", "0.0.0.0"],
    ["::", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    ["2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // RFC 5952 §4.2.3: leftmost of equal runs
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // the longest run wins
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // §4.2.2: one zero group stays
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
    ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"],
    ["::ffff:1.2.3.4", "::ffff:1.2.3.4"], // §5: mapped addresses in mixed notation
    ["::ffff:0102:0304", "::ffff:1.2.3.4"],
    ["64:ff9b::1.2.3.4", "64:ff9b::102:304"],
    ["::1.2.3.4", "::102:304"],
    ["[fe80::1%eth0]", "fe80::1"],
    ["FE80::ABCD", "fe80::abcd"],
  ])("%p -> %p", (text, expected) => {
    expect(formatIp(ip(text))).toBe(expected);
  });

  test("format then parse gives the same bytes (random addresses, and ones with zero runs)", () => {
    // A fixed-seed generator, so a failure names the same address every run.
    let seed = 0x2545f491;
    const next = (): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return seed >>> 0;
    };
    for (let round = 0; round < 2000; round++) {
      const family = round % 2 === 0 ? 4 : 6;
      const bytes = new Uint8Array(family === 4 ? 4 : 16);
      for (let i = 0; i < bytes.length; i++) bytes[i] = next() & 0xff;
      // Zero out random 16-bit groups so "::" placement gets exercised.
      if (family === 6) for (let g = 0; g < 8; g++) if (next() % 2 === 0) bytes.fill(0, g * 2, g * 2 + 2);
      const text = formatIp({ family, bytes });
      expect(parseIp(text)).toEqual({ family, bytes });
      expect(formatIp(ip(text))).toBe(text);
    }
  });
});

describe("unmapIpv4", () => {
  test("a mapped address becomes IPv4", () => {
    expect(unmapIpv4(ip("::ffff:192.0.2.1"))).toEqual(ip("192.0.2.1"));
    expect(unmapIpv4(ip("::ffff:c000:201"))).toEqual(ip("192.0.2.1"));
  });

  test.each(["192.0.2.1", "::1.2.3.4", "64:ff9b::1.2.3.4", "::fffe:1.2.3.4", "1::ffff:1.2.3.4", "::1"])(
    "%p is unchanged",
    (text) => {
      const parsed = ip(text);
      expect(unmapIpv4(parsed)).toBe(parsed);
    },
  );
});

describe("parseCidr", () => {
  test.each([
    ["10.0.0.0/8", 4, "10.0.0.0", 8],
    ["10.1.2.3/8", 4, "10.0.0.0", 8], // host bits zeroed
    ["172.31.255.255/12", 4, "172.16.0.0", 12],
    ["1.2.3.4", 4, "1.2.3.4", 32],
    ["0.0.0.0/0", 4, "0.0.0.0", 0],
    ["255.255.255.255/1", 4, "128.0.0.0", 1],
    ["::/0", 6, "::", 0],
    ["2001:db8::1/32", 6, "2001:db8::", 32],
    ["fdff:ffff::1/7", 6, "fc00::", 7],
    ["febf:ffff::/10", 6, "fe80::", 10],
    ["2001:1ff:ffff::/23", 6, "2001::", 23],
    ["::1", 6, "::1", 128],
    ["::ffff:10.1.2.3/104", 6, "::ffff:10.0.0.0", 104],
  ])("%p", (text, family, address, prefix) => {
    expect(parseCidr(text)).toEqual({ family: family as 4 | 6, bytes: ip(address).bytes, prefix });
  });

  test.each([
    "", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/08", "10.0.0.0/8/8",
    "10.0.0.0/8 ", "10.0.0.0/ 8", "10.0.0/8", "::/129", "::/1000", "[::1]/128", "fe80::%eth0/64", "abc/8",
  ])("rejects %p", (text) => {
    expect(parseCidr(text)).toBeNull();
  });
});

describe("cidrContains", () => {
  // [prefix, last address before it, first, last, first address after it]
  test.each([
    ["172.16.0.0/12", "172.15.255.255", "172.16.0.0", "172.31.255.255", "172.32.0.0"],
    ["100.64.0.0/10", "100.63.255.255", "100.64.0.0", "100.127.255.255", "100.128.0.0"],
    ["192.0.0.8/32", "192.0.0.7", "192.0.0.8", "192.0.0.8", "192.0.0.9"],
    ["198.18.0.0/15", "198.17.255.255", "198.18.0.0", "198.19.255.255", "198.20.0.0"],
    ["fc00::/7", "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe00::"],
    ["fe80::/10", "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fec0::"],
    ["2001::/23", "2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001::", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:200::"],
    ["::ffff:0:0/96", "::fffe:ffff:ffff", "::ffff:0.0.0.0", "::ffff:255.255.255.255", "0:0:0:0:1::"],
    ["2001:db8::1/128", "2001:db8::", "2001:db8::1", "2001:db8::1", "2001:db8::2"],
  ])("%p edges", (prefix, before, first, last, after) => {
    const range = cidr(prefix);
    expect(cidrContains(range, ip(before))).toBe(false);
    expect(cidrContains(range, ip(first))).toBe(true);
    expect(cidrContains(range, ip(last))).toBe(true);
    expect(cidrContains(range, ip(after))).toBe(false);
  });

  test("/0 holds its whole family and nothing of the other", () => {
    expect(cidrContains(cidr("0.0.0.0/0"), ip("255.255.255.255"))).toBe(true);
    expect(cidrContains(cidr("0.0.0.0/0"), ip("::"))).toBe(false);
    expect(cidrContains(cidr("::/0"), ip("ffff::"))).toBe(true);
    expect(cidrContains(cidr("::/0"), ip("0.0.0.0"))).toBe(false);
  });

  test("families must match: a mapped address is not inside an IPv4 prefix", () => {
    expect(cidrContains(cidr("10.0.0.0/8"), ip("::ffff:10.0.0.1"))).toBe(false);
  });

  test("host bits in a hand-built prefix do not matter", () => {
    const sloppy: Cidr = { family: 4, bytes: Uint8Array.of(10, 9, 9, 9), prefix: 8 };
    expect(cidrContains(sloppy, ip("10.0.0.1"))).toBe(true);
    expect(cidrContains(sloppy, ip("11.0.0.1"))).toBe(false);
  });
});

describe("CidrSet", () => {
  const set = new CidrSet(["10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32", "::ffff:192.168.0.0/112"].map(cidr));

  test("size", () => {
    expect(set.size).toBe(4);
    expect(new CidrSet().size).toBe(0);
  });

  test.each([
    ["10.2.3.4", true],
    ["::ffff:10.2.3.4", true], // mapped address against an IPv4 entry
    ["192.168.5.5", true], // IPv4 address against a mapped entry
    ["::ffff:192.168.5.5", true],
    ["192.169.0.0", false],
    ["11.0.0.0", false],
    ["::ffff:11.0.0.0", false],
    ["::10.2.3.4", false], // IPv4-compatible is not IPv4-mapped
    ["2001:db8:1::1", true],
    ["2001:db9::", false],
  ])("contains(%p) is %p", (text, expected) => {
    expect(set.contains(ip(text))).toBe(expected);
  });

  test("match returns the most specific entry, mapped entries as IPv4", () => {
    expect(set.match(ip("10.1.2.3"))).toEqual(cidr("10.1.0.0/16"));
    expect(set.match(ip("::ffff:10.2.0.1"))).toEqual(cidr("10.0.0.0/8"));
    expect(set.match(ip("::ffff:192.168.0.1"))).toEqual(cidr("192.168.0.0/16"));
    expect(set.match(ip("8.8.8.8"))).toBeNull();
  });

  test("an IPv6-only entry does not match an IPv4 peer, mapped or not", () => {
    const v6 = new CidrSet([cidr("::/0")]);
    expect(v6.contains(ip("::ffff:1.2.3.4"))).toBe(false);
    expect(v6.contains(ip("1.2.3.4"))).toBe(false);
    expect(v6.contains(ip("2001:db8::1"))).toBe(true);
  });

  test("add", () => {
    const grown = new CidrSet();
    expect(grown.contains(ip("127.0.0.1"))).toBe(false);
    grown.add(cidr("127.0.0.0/8"));
    expect(grown.contains(ip("::ffff:127.0.0.1"))).toBe(true);
  });
});
