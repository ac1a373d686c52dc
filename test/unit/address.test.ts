import { describe, expect, test } from "bun:test";
import { formatSocketAddress, parseSocketAddress, type SocketAddress } from "../../src/net/address.ts";

function parsed(text: string, options?: { allowPortZero?: boolean }): SocketAddress {
  const a = parseSocketAddress(text, options);
  if (typeof a === "string") throw new Error(`expected ${text} to parse, got: ${a}`);
  return a;
}

describe("parseSocketAddress: valid", () => {
  test.each<[string, SocketAddress]>([
    ["127.0.0.1:7000", { kind: "inet", host: "127.0.0.1", port: 7000, literal: true }],
    ["0.0.0.0:443", { kind: "inet", host: "0.0.0.0", port: 443, literal: true }],
    ["10.0.0.2:1", { kind: "inet", host: "10.0.0.2", port: 1, literal: true }],
    ["10.0.0.2:65535", { kind: "inet", host: "10.0.0.2", port: 65535, literal: true }],
    ["localhost:5432", { kind: "inet", host: "localhost", port: 5432, literal: false }],
    ["db.internal.example.com:5432", { kind: "inet", host: "db.internal.example.com", port: 5432, literal: false }],
    ["my-host:80", { kind: "inet", host: "my-host", port: 80, literal: false }],
    ["[::1]:7000", { kind: "inet", host: "::1", port: 7000, literal: true }],
    ["[::]:443", { kind: "inet", host: "::", port: 443, literal: true }],
    ["[2001:db8::1]:8443", { kind: "inet", host: "2001:db8::1", port: 8443, literal: true }],
    ["[::ffff:10.0.0.1]:80", { kind: "inet", host: "::ffff:10.0.0.1", port: 80, literal: true }],
    ["unix:/run/app/w0.sock", { kind: "unix", path: "/run/app/w0.sock" }],
    ["unix:/tmp/a b", { kind: "unix", path: "/tmp/a b" }],
  ])("%s", (text, expected) => {
    expect(parseSocketAddress(text)).toEqual(expected);
  });

  test("port 0 is accepted only with allowPortZero", () => {
    expect(parseSocketAddress("127.0.0.1:0")).toBe("port out of range: 0");
    expect(parsed("127.0.0.1:0", { allowPortZero: true })).toEqual({ kind: "inet", host: "127.0.0.1", port: 0, literal: true });
    expect(parsed("[::1]:0", { allowPortZero: true })).toEqual({ kind: "inet", host: "::1", port: 0, literal: true });
  });

  test("a unix path of exactly 107 bytes is accepted", () => {
    const path = `/${"a".repeat(106)}`;
    expect(parsed(`unix:${path}`)).toEqual({ kind: "unix", path });
  });
});

describe("parseSocketAddress: errors", () => {
  test.each([
    // missing port
    ["127.0.0.1", 'expected host:port, got "127.0.0.1"'],
    ["localhost", 'expected host:port, got "localhost"'],
    ["127.0.0.1:", 'not a valid port: ""'],
    [":7000", 'expected host:port, got ":7000"'],
    ["", 'expected host:port, got ""'],
    ["[::1]", 'expected [IPv6]:port, got "[::1]"'],
    ["[::1]:", 'not a valid port: ""'],
    ["[::1", 'expected [IPv6]:port, got "[::1"'],
    ["[::1]7000", 'expected [IPv6]:port, got "[::1]7000"'],
    // ports out of range or not numbers
    ["127.0.0.1:0", "port out of range: 0"],
    ["127.0.0.1:65536", "port out of range: 65536"],
    ["127.0.0.1:99999", "port out of range: 99999"],
    ["127.0.0.1:123456", 'not a valid port: "123456"'],
    ["127.0.0.1:-1", 'not a valid port: "-1"'],
    ["127.0.0.1:+80", 'not a valid port: "+80"'],
    ["127.0.0.1:http", 'not a valid port: "http"'],
    ["127.0.0.1: 80", 'not a valid port: " 80"'],
    ["127.0.0.1:80 ", 'not a valid port: "80 "'],
    ["[::1]:65536", "port out of range: 65536"],
    // IPv6 without brackets, or brackets around something else
    ["::1:7000", 'IPv6 addresses need brackets: "[::1]:7000"'],
    ["2001:db8::1:443", 'IPv6 addresses need brackets: "[2001:db8::1]:443"'],
    ["[127.0.0.1]:80", 'not an IPv6 address: "127.0.0.1"'],
    ["[example.com]:80", 'not an IPv6 address: "example.com"'],
    ["[]:80", 'not an IPv6 address: ""'],
    // host names
    ["exa mple.com:80", 'not a valid host name: "exa mple.com"'],
    ["host_name:80", 'not a valid host name: "host_name"'],
    ["user@host:80", 'not a valid host name: "user@host"'],
    // unix paths
    ["unix:relative.sock", 'unix socket path must be absolute: "unix:relative.sock"'],
    ["unix:./x.sock", 'unix socket path must be absolute: "unix:./x.sock"'],
    ["unix:", 'unix socket path must be absolute: "unix:"'],
  ])("%p → %p", (text, message) => {
    expect(parseSocketAddress(text)).toBe(message);
  });

  test("a unix path of 108 bytes is too long (sun_path holds 107 and a NUL)", () => {
    const text = `unix:/${"a".repeat(107)}`;
    expect(parseSocketAddress(text)).toBe(`unix socket path longer than 107 bytes: "${text}"`);
  });

  test("unix path length is counted in bytes, not characters", () => {
    const path = `/${"é".repeat(54)}`; // 55 characters, 109 bytes
    expect(path.length).toBeLessThan(107);
    expect(parseSocketAddress(`unix:${path}`)).toStartWith("unix socket path longer than 107 bytes");
  });
});

describe("formatSocketAddress", () => {
  test.each([
    "127.0.0.1:7000",
    "0.0.0.0:443",
    "localhost:5432",
    "db.example.com:65535",
    "[::1]:7000",
    "[::]:443",
    "[2001:db8::1]:8443",
    "[::ffff:10.0.0.1]:80",
    "unix:/run/app/w0.sock",
  ])("round trip %s", (text) => {
    expect(formatSocketAddress(parsed(text))).toBe(text);
  });

  test("round trip with port 0", () => {
    expect(formatSocketAddress(parsed("[::]:0", { allowPortZero: true }))).toBe("[::]:0");
  });

  test("formats hand-made addresses", () => {
    expect(formatSocketAddress({ kind: "inet", host: "fe80::1", port: 22, literal: true })).toBe("[fe80::1]:22");
    expect(formatSocketAddress({ kind: "inet", host: "10.0.0.1", port: 22, literal: true })).toBe("10.0.0.1:22");
    expect(formatSocketAddress({ kind: "unix", path: "/s" })).toBe("unix:/s");
  });

  test("parse(format(a)) is a for every parsed address", () => {
    for (const text of ["1.2.3.4:5", "[::1]:6", "unix:/x/y", "h:7"]) {
      const a = parsed(text);
      expect(parsed(formatSocketAddress(a))).toEqual(a);
    }
  });
});
