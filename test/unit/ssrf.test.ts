import { describe, expect, test } from "bun:test";
import { cidrContains, formatIp, parseCidr, parseIp, unmapIpv4 } from "../../src/net/ip.ts";
import type { Cidr, IpAddress } from "../../src/net/ip.ts";
import { SPECIAL_PURPOSE_RANGES, checkDialAddress } from "../../src/upstream/ssrf.ts";

function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (parsed === null) throw new Error(`bad prefix in table: ${text}`);
  return parsed;
}

// Address arithmetic written here, independently of src/net/ip.ts, so the edges are not computed by
// the code under test.
function hostMask(prefix: number, index: number): number {
  const bits = Math.min(8, Math.max(0, prefix - index * 8));
  return ~(0xff00 >> bits) & 0xff;
}

function lastOf(range: Cidr): IpAddress {
  return { family: range.family, bytes: range.bytes.map((byte, i) => byte | hostMask(range.prefix, i)) };
}

/** ip + delta (delta is +1 or -1), or null when that leaves the address space. */
function step(ip: IpAddress, delta: 1 | -1): IpAddress | null {
  const bytes = ip.bytes.slice();
  for (let i = bytes.length - 1; i >= 0; i--) {
    const value = (bytes[i] ?? 0) + delta;
    bytes[i] = value & 0xff;
    if (value >= 0 && value <= 0xff) return { family: ip.family, bytes };
  }
  return null;
}

/** The table entries that contain `ip`, taken at face value (no mapped-address rejudging). */
function entriesContaining(ip: IpAddress): string[] {
  return SPECIAL_PURPOSE_RANGES.filter((range) => cidrContains(cidr(range.cidr), ip)).map((range) => range.cidr);
}

describe("SPECIAL_PURPOSE_RANGES table", () => {
  test("every prefix parses, is written in normal form, and appears once", () => {
    const seen = new Set<string>();
    for (const range of SPECIAL_PURPOSE_RANGES) {
      const parsed = cidr(range.cidr);
      const [address] = range.cidr.split("/");
      expect(parseIp(address ?? "")?.bytes).toEqual(parsed.bytes); // no host bits set
      expect(seen.has(range.cidr)).toBe(false);
      seen.add(range.cidr);
      expect(range.name.length).toBeGreaterThan(0);
      expect(range.rfc).toMatch(/^RFC \d+/);
    }
  });

  test("only the IPv4-mapped range is rejudged as IPv4", () => {
    expect(SPECIAL_PURPOSE_RANGES.filter((range) => range.verdict === "ipv4").map((range) => range.cidr)).toEqual([
      "::ffff:0:0/96",
    ]);
  });

  // Written out by hand from the IANA registries (IPv4: 26 entries with 192.0.0.170/171 split in two;
  // IPv6: 25 entries) plus the extras, so a row deleted from the table fails here.
  test.each([
    "0.0.0.0/8", "0.0.0.0/32", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.0.0/29", "192.0.0.8/32", "192.0.0.9/32", "192.0.0.10/32",
    "192.0.0.170/32", "192.0.0.171/32", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24",
    "192.88.99.0/24", "192.88.99.2/32", "192.168.0.0/16", "192.175.48.0/24", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32", "224.0.0.0/4",
    "::1/128", "::/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "100:0:0:1::/64",
    "2001::/23", "2001::/32", "2001:1::1/128", "2001:1::2/128", "2001:1::3/128", "2001:2::/48",
    "2001:3::/32", "2001:4:112::/48", "2001:10::/28", "2001:20::/28", "2001:30::/28", "2001:db8::/32",
    "2002::/16", "2620:4f:8000::/48", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10",
    "::/96", "fec0::/10", "ff00::/8",
  ])("holds %p", (text) => {
    expect(SPECIAL_PURPOSE_RANGES.some((range) => range.cidr === text)).toBe(true);
  });
});

describe("checkDialAddress: edges of every table entry", () => {
  for (const range of SPECIAL_PURPOSE_RANGES) {
    const parsed = cidr(range.cidr);
    const first: IpAddress = { family: parsed.family, bytes: parsed.bytes };
    const last = lastOf(parsed);

    test(`${range.cidr} (${range.name}): first and last address`, () => {
      for (const inside of [first, last]) {
        const result = checkDialAddress(inside);
        if (range.verdict === "ipv4") {
          // Judged as the IPv4 address it carries, exactly as that address would be.
          expect(result).toEqual(checkDialAddress(unmapIpv4(inside)));
          continue;
        }
        expect(result.allowed).toBe(false);
        if (result.allowed) continue;
        // Reported: this entry, or a more specific one nested inside it.
        const reported = cidr(result.range);
        expect(cidrContains(reported, inside)).toBe(true);
        expect(reported.prefix).toBeGreaterThanOrEqual(parsed.prefix);
        expect(cidrContains(parsed, reported)).toBe(true);
        // The text form is accepted too.
        expect(checkDialAddress(formatIp(inside))).toEqual(result);
      }
    });

    const outside = [step(first, -1), step(last, 1)].filter((ip): ip is IpAddress => ip !== null);
    if (outside.length === 0) continue;
    test(`${range.cidr} (${range.name}): just outside`, () => {
      for (const ip of outside) {
        const result = checkDialAddress(ip);
        expect(cidrContains(parsed, ip)).toBe(false);
        if (entriesContaining(ip).length === 0) expect(result).toEqual({ allowed: true });
        else if (!result.allowed) expect(result.range).not.toBe(range.cidr);
      }
    });
  }
});

describe("checkDialAddress: literal vectors", () => {
  test.each([
    ["127.0.0.1", "127.0.0.0/8", "Loopback"],
    ["127.255.255.255", "127.0.0.0/8", "Loopback"],
    ["10.0.0.0", "10.0.0.0/8", "Private-Use"],
    ["10.255.255.255", "10.0.0.0/8", "Private-Use"],
    ["100.64.0.1", "100.64.0.0/10", "Shared Address Space"],
    ["100.127.255.255", "100.64.0.0/10", "Shared Address Space"],
    ["169.254.169.254", "169.254.0.0/16", "Link Local"], // cloud metadata
    ["172.16.0.0", "172.16.0.0/12", "Private-Use"],
    ["172.31.255.255", "172.16.0.0/12", "Private-Use"],
    ["192.168.1.1", "192.168.0.0/16", "Private-Use"],
    ["198.18.0.1", "198.18.0.0/15", "Benchmarking"],
    ["198.19.255.255", "198.18.0.0/15", "Benchmarking"],
    ["0.0.0.0", "0.0.0.0/32", '"This host on this network"'],
    ["0.1.2.3", "0.0.0.0/8", '"This network"'],
    ["255.255.255.255", "255.255.255.255/32", "Limited Broadcast"],
    ["255.255.255.254", "240.0.0.0/4", "Reserved"],
    ["240.0.0.1", "240.0.0.0/4", "Reserved"],
    ["224.0.0.1", "224.0.0.0/4", "Multicast"],
    ["239.255.255.255", "224.0.0.0/4", "Multicast"],
    ["192.0.0.1", "192.0.0.0/29", "IPv4 Service Continuity Prefix"],
    ["192.0.0.9", "192.0.0.9/32", "Port Control Protocol Anycast"],
    ["192.0.0.170", "192.0.0.170/32", "NAT64/DNS64 Discovery"],
    ["192.0.0.255", "192.0.0.0/24", "IETF Protocol Assignments"],
    ["192.0.2.1", "192.0.2.0/24", "Documentation (TEST-NET-1)"],
    ["192.31.196.1", "192.31.196.0/24", "AS112-v4"],
    ["192.52.193.1", "192.52.193.0/24", "AMT"],
    ["192.88.99.1", "192.88.99.0/24", "Deprecated (6to4 Relay Anycast)"],
    ["192.88.99.2", "192.88.99.2/32", "6a44-relay anycast address"],
    ["192.175.48.1", "192.175.48.0/24", "Direct Delegation AS112 Service"],
    ["198.51.100.7", "198.51.100.0/24", "Documentation (TEST-NET-2)"],
    ["203.0.113.255", "203.0.113.0/24", "Documentation (TEST-NET-3)"],
    ["::1", "::1/128", "Loopback Address"],
    ["[::1]", "::1/128", "Loopback Address"],
    ["::", "::/128", "Unspecified Address"],
    ["::ffff:127.0.0.1", "127.0.0.0/8", "Loopback"],
    ["::ffff:7f00:1", "127.0.0.0/8", "Loopback"], // the same address in hex groups
    ["[::ffff:127.0.0.1]", "127.0.0.0/8", "Loopback"],
    ["::ffff:10.0.0.1", "10.0.0.0/8", "Private-Use"],
    ["::ffff:169.254.169.254", "169.254.0.0/16", "Link Local"],
    ["::ffff:0.0.0.0", "0.0.0.0/32", '"This host on this network"'],
    ["::127.0.0.1", "::/96", "IPv4-compatible Address (deprecated)"],
    ["::8.8.8.8", "::/96", "IPv4-compatible Address (deprecated)"],
    ["64:ff9b::a00:1", "64:ff9b::/96", "IPv4-IPv6 Translat."],
    ["64:ff9b::8.8.8.8", "64:ff9b::/96", "IPv4-IPv6 Translat."],
    ["64:ff9b:1::1", "64:ff9b:1::/48", "IPv4-IPv6 Translat."],
    ["100::1", "100::/64", "Discard-Only Address Block"],
    ["100:0:0:1::1", "100:0:0:1::/64", "Dummy IPv6 Prefix"],
    ["2001::1", "2001::/32", "TEREDO"],
    ["2001:1::1", "2001:1::1/128", "Port Control Protocol Anycast"],
    ["2001:1::4", "2001::/23", "IETF Protocol Assignments"],
    ["2001:2::1", "2001:2::/48", "Benchmarking"],
    ["2001:10::1", "2001:10::/28", "Deprecated (previously ORCHID)"],
    ["2001:20::1", "2001:20::/28", "ORCHIDv2"],
    ["2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "2001::/23", "IETF Protocol Assignments"],
    ["2001:db8::1", "2001:db8::/32", "Documentation"],
    ["2002:c000:0204::1", "2002::/16", "6to4"],
    ["2620:4f:8000::1", "2620:4f:8000::/48", "Direct Delegation AS112 Service"],
    ["3fff::1", "3fff::/20", "Documentation"],
    ["5f00::1", "5f00::/16", "Segment Routing (SRv6) SIDs"],
    ["fc00::1", "fc00::/7", "Unique-Local"],
    ["fd12:3456::1", "fc00::/7", "Unique-Local"],
    ["fd00:ec2::254", "fc00::/7", "Unique-Local"], // AWS IPv6 metadata
    ["fe80::1", "fe80::/10", "Link-Local Unicast"],
    ["fe80::1%eth0", "fe80::/10", "Link-Local Unicast"],
    ["febf:ffff::1", "fe80::/10", "Link-Local Unicast"],
    ["fec0::1", "fec0::/10", "Site-Local (deprecated)"],
    ["ff02::1", "ff00::/8", "Multicast"],
    ["ff05::1:3", "ff00::/8", "Multicast"],
  ])("%p is refused as %p (%s)", (address, range, name) => {
    expect(checkDialAddress(address)).toEqual({ allowed: false, range, name });
  });

  test.each([
    "8.8.8.8", "1.1.1.1", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0", "126.255.255.255",
    "128.0.0.0", "169.253.255.255", "169.255.0.0", "172.15.255.255", "172.32.0.0", "192.167.255.255",
    "192.169.0.0", "198.17.255.255", "198.20.0.0", "223.255.255.255", "::ffff:8.8.8.8", "::ffff:172.32.0.0",
    "2606:4700:4700::1111", "2001:4860:4860::8888", "[2606:4700:4700::1111]", "2001:200::1", "2003::1",
  ])("%p is allowed", (address) => {
    expect(checkDialAddress(address)).toEqual({ allowed: true });
  });

  test.each(["", "abc", "localhost", "127.1", "0x7f.0.0.1", "2130706433", "017700000001", "1.2.3", "::1::"])(
    "%p is not an IP address",
    (text) => {
      expect(checkDialAddress(text)).toEqual({ allowed: false, range: "", name: "not an IP address" });
    },
  );

  test("accepts a parsed address and refuses one whose bytes do not fit its family", () => {
    const parsed = parseIp("10.0.0.1");
    if (parsed === null) throw new Error("unreachable");
    expect(checkDialAddress(parsed)).toEqual({ allowed: false, range: "10.0.0.0/8", name: "Private-Use" });
    expect(checkDialAddress({ family: 4, bytes: new Uint8Array(16) })).toEqual({
      allowed: false,
      range: "",
      name: "not an IP address",
    });
    expect(checkDialAddress({ family: 6, bytes: Uint8Array.of(8, 8, 8, 8) }).allowed).toBe(false);
  });
});
