import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  CLIENT_CONNECT_ATTRS, CLIENT_CONNECT_WITH_DB, CLIENT_LONG_PASSWORD, CLIENT_PLUGIN_AUTH, CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA, CLIENT_PROTOCOL_41,
  CLIENT_SECURE_CONNECTION, CLIENT_SSL, CLIENT_ZSTD_COMPRESSION_ALGORITHM, has, intersect, CHARSET_UTF8MB4_GENERAL_CI, SERVER_STATUS_AUTOCOMMIT,
} from "../../src/mysql/capabilities.ts";
import { buildHandshakeResponse41, buildSslRequest, parseClientHandshake, type HandshakeResponse41 } from "../../src/mysql/handshake-response.ts";
import { buildInitialHandshake, makeScramble, parseInitialHandshake, type InitialHandshake } from "../../src/mysql/initial-handshake.ts";
import { frameMessage, messagePayload } from "../../src/mysql/packet-framer.ts";
import { fixture } from "../helpers/fixtures.ts";

// Captured from Debian 12's mariadbd 10.11.19 on loopback through test/fixtures/smtp-mysql-record-relay.py
// (mysql-packet-framer.test.ts says how the server was set up):
//   native:  mariadb (libmariadb 3.3.20) -h127.0.0.1 -uapp -psecret --ssl=0 alpha -e "select 1"
//   ssl:     the same with --ssl --ssl-verify-server-cert=0 (only the plaintext greeting and SSLRequest kept)
//   pymysql: PyMySQL connect(host, port, user="app", password="secret", database="alpha", ssl_disabled=True)
//   nodb:    mariadb ... -uapp -psecret nosuchdb
function messages(stream: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < stream.length;) {
    const f = frameMessage(stream, at, 1 << 20);
    if (f.kind !== "message") throw new Error(f.kind);
    out.push(messagePayload(stream, at, f));
    at += f.size;
  }
  return out;
}
const greeting = (name: string) => messages(fixture(`mysql-${name}-server`))[0]!;
const firstClientPacket = (name: string) => messages(fixture(`mysql-${name}-client`))[0]!;

/** mysql_native_password: SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))). */
function nativeToken(password: string, scramble: Uint8Array): Uint8Array {
  const sha1 = (...parts: Uint8Array[]) => new Uint8Array(createHash("sha1").update(Buffer.concat(parts)).digest());
  const p1 = sha1(new TextEncoder().encode(password));
  const p3 = sha1(scramble, sha1(p1));
  return p1.map((b, i) => b ^ p3[i]!);
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("Initial Handshake v10 from MariaDB 10.11", () => {
  test("server version, connection id, capabilities, MariaDB's extended capabilities, plugin", () => {
    const r = parseInitialHandshake(greeting("native"));
    if (r.kind !== "handshake") throw new Error(r.kind);
    const h = r.handshake;
    expect(h.serverVersion).toBe("5.5.5-10.11.19-MariaDB-0+deb12u1");
    expect(h.connectionId).toBe(9);
    expect(h.capabilities).toBe(0x81fffffe);
    expect(has(h.capabilities, CLIENT_LONG_PASSWORD)).toBe(false); // MariaDB's CLIENT_MYSQL is clear...
    expect(h.mariadbCapabilities).toBe(0x1d); // ...so the extended capabilities are in the reserved bytes
    expect(h.characterSet).toBe(8);
    expect(h.statusFlags).toBe(SERVER_STATUS_AUTOCOMMIT);
    expect(h.authPluginName).toBe("mysql_native_password");
    expect(h.scramble.length).toBe(20);
  });

  test("both scramble parts: the client's token checks out against them", () => {
    for (const name of ["native", "pymysql"]) {
      const g = parseInitialHandshake(greeting(name));
      const c = parseClientHandshake(firstClientPacket(name));
      if (g.kind !== "handshake" || c.kind !== "response41") throw new Error("fixture");
      expect(hex(c.response.authResponse)).toBe(hex(nativeToken("secret", g.handshake.scramble)));
    }
  });

  test("builds back to the captured bytes, byte for byte", () => {
    for (const name of ["native", "ssl", "pymysql", "nodb", "wrongpw", "switchnative", "ed25519"]) {
      const payload = greeting(name);
      const r = parseInitialHandshake(payload);
      if (r.kind !== "handshake") throw new Error(r.kind);
      expect(hex(buildInitialHandshake(r.handshake))).toBe(hex(payload));
    }
  });

  test("the proxy's own greeting round-trips (MySQL-style: no extended capabilities)", () => {
    const h: InitialHandshake = {
      serverVersion: "8.0.36-switchyard", connectionId: 0xfffffffe, scramble: makeScramble(new Uint8Array(20).fill(200)),
      capabilities: (CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH | CLIENT_SSL | CLIENT_CONNECT_WITH_DB | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | CLIENT_CONNECT_ATTRS) >>> 0,
      mariadbCapabilities: 0, characterSet: CHARSET_UTF8MB4_GENERAL_CI, statusFlags: SERVER_STATUS_AUTOCOMMIT, authPluginName: "mysql_native_password",
    };
    const payload = buildInitialHandshake(h);
    expect(parseInitialHandshake(payload)).toEqual({ kind: "handshake", handshake: h });
    expect(payload[payload.length - 1]).toBe(0);
    expect([...h.scramble].every((b) => b >= 0x21 && b <= 0x7e)).toBe(true);
  });

  test("the builder refuses a scramble some clients would misread", () => {
    const h = { ...(parseInitialHandshake(greeting("native")) as { handshake: InitialHandshake }).handshake };
    expect(() => buildInitialHandshake({ ...h, scramble: new Uint8Array(19).fill(65) })).toThrow(RangeError);
    expect(() => buildInitialHandshake({ ...h, scramble: new Uint8Array(20) })).toThrow(RangeError);
  });

  test("a server without CLIENT_PLUGIN_AUTH (MySQL before 5.5.7) sends no plugin name", () => {
    const h: InitialHandshake = {
      serverVersion: "5.1.73", connectionId: 11, scramble: makeScramble(new Uint8Array(20).fill(7)), capabilities: CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION,
      mariadbCapabilities: 0, characterSet: 8, statusFlags: 2, authPluginName: "",
    };
    const payload = buildInitialHandshake(h);
    const scrambleLengthAt = 1 + "5.1.73\0".length + 4 + 8 + 1 + 2 + 1 + 2 + 2;
    expect(payload[scrambleLengthAt]).toBe(0); // 0 without CLIENT_PLUGIN_AUTH
    expect(payload[payload.length - 1]).toBe(0); // ends with part 2's NUL: no plugin name follows
    expect(parseInitialHandshake(payload)).toEqual({ kind: "handshake", handshake: h });
  });

  test("a server that refuses before greeting sends an ERR packet", () => {
    const err = new Uint8Array([0xff, 0x10, 0x04, ...new TextEncoder().encode("Too many connections")]);
    expect(parseInitialHandshake(err)).toEqual({ kind: "server-error", err: { code: 1040, sqlState: null, message: "Too many connections" } });
  });

  test("refused, each with the exact bytes", () => {
    const reason = (bytes: number[]) => {
      const r = parseInitialHandshake(new Uint8Array(bytes));
      return r.kind === "error" ? r.reason : r.kind;
    };
    expect(reason([])).toBe("truncated_protocol_version");
    expect(reason([9, 0x41, 0])).toBe("unsupported_protocol_version"); // protocol 9 (pre-3.21)
    expect(reason([10, 0x41, 0x42])).toBe("truncated_server_version"); // no NUL
    expect(reason([10, 0x41, 0, 1, 0, 0])).toBe("truncated_connection_id");
    expect(reason([10, 0x41, 0, 1, 0, 0, 0, 1, 2, 3])).toBe("truncated_scramble");
    const upToCaps = [10, 0x41, 0, 1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0x00, 0x82];
    expect(reason(upToCaps)).toBe("truncated_character_set"); // a pre-4.1 greeting that ends here
    expect(reason([...upToCaps, 8, 2, 0, 0, 0, 21, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x41])).toBe("truncated_scramble"); // part 2 short
  });
});

describe("SSLRequest and HandshakeResponse41", () => {
  test("the mariadb client's SSLRequest: 32 bytes with CLIENT_SSL", () => {
    const payload = firstClientPacket("ssl");
    expect(payload.length).toBe(32);
    const r = parseClientHandshake(payload);
    expect(r).toEqual({ kind: "ssl-request", hello: { capabilities: 0xbfaa8c, mariadbCapabilities: 0x1d, maxPacketSize: 1 << 20, characterSet: 33 } });
    if (r.kind !== "ssl-request") return;
    expect(hex(buildSslRequest(r.hello))).toBe(hex(payload));
  });

  test("the mariadb client's response: user, database, plugin, attributes (lenenc auth data)", () => {
    const r = parseClientHandshake(firstClientPacket("native"));
    if (r.kind !== "response41") throw new Error(r.kind);
    const x = r.response;
    expect(has(x.capabilities, CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) && has(x.capabilities, CLIENT_CONNECT_WITH_DB)).toBe(true);
    expect([x.user, x.database, x.authPluginName, x.authResponse.length, x.characterSet, x.maxPacketSize, x.mariadbCapabilities]).toEqual(["app", "alpha", "mysql_native_password", 20, 33, 1 << 20, 0x1d]);
    expect(Object.fromEntries(x.attributes!)).toEqual({ _os: "Linux", _client_name: "libmariadb", _pid: "21756", _client_version: "3.3.20", _platform: "x86_64", program_name: "mysql", _server_host: "127.0.0.1" });
    expect(x.zstdLevel).toBeNull();
  });

  test("PyMySQL's response (no MariaDB capabilities, utf8mb4)", () => {
    const r = parseClientHandshake(firstClientPacket("pymysql"));
    if (r.kind !== "response41") throw new Error(r.kind);
    expect([r.response.user, r.response.database, r.response.characterSet, r.response.maxPacketSize, r.response.mariadbCapabilities]).toEqual(["app", "alpha", 45, 0xffffff, 0]);
    expect(r.response.attributes!.get("_client_name")).toBe("pymysql");
  });

  test("another database in the captured response to an unknown one", () => {
    const r = parseClientHandshake(firstClientPacket("nodb"));
    expect(r.kind === "response41" && r.response.database).toBe("nosuchdb");
  });

  test("every captured response builds back to its bytes", () => {
    for (const name of ["native", "pymysql", "nodb", "wrongpw", "switchnative", "ed25519"]) {
      const payload = firstClientPacket(name);
      const r = parseClientHandshake(payload);
      if (r.kind !== "response41") throw new Error(`${name}: ${r.kind}`);
      expect(hex(buildHandshakeResponse41(r.response))).toBe(hex(payload));
    }
  });

  const base: HandshakeResponse41 = {
    capabilities: 0, mariadbCapabilities: 0, maxPacketSize: 1 << 24, characterSet: 45, user: "app",
    authResponse: new Uint8Array([1, 2, 3]), database: null, authPluginName: null, attributes: null, zstdLevel: null,
  };

  test("the three auth-response encodings, chosen by capability", () => {
    const variants: [number, number[]][] = [
      [CLIENT_PROTOCOL_41 | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | CLIENT_SECURE_CONNECTION, [3, 1, 2, 3]], // string<lenenc>
      [CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION, [3, 1, 2, 3]], // int<1> length
      [CLIENT_PROTOCOL_41, [1, 2, 3, 0]], // string<NUL>
    ];
    for (const [caps, tail] of variants) {
      const h = { ...base, capabilities: caps };
      const payload = buildHandshakeResponse41(h);
      expect([...payload.subarray(32)]).toEqual([0x61, 0x70, 0x70, 0, ...tail]);
      expect(parseClientHandshake(payload)).toEqual({ kind: "response41", response: h });
    }
    const long = { ...base, capabilities: CLIENT_PROTOCOL_41 | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA, authResponse: new Uint8Array(300).fill(7) };
    expect([...buildHandshakeResponse41(long).subarray(36, 39)]).toEqual([0xfc, 0x2c, 0x01]);
    expect(parseClientHandshake(buildHandshakeResponse41(long))).toEqual({ kind: "response41", response: long });
    expect(() => buildHandshakeResponse41({ ...long, capabilities: CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION })).toThrow(RangeError);
  });

  test("every optional field round-trips", () => {
    const caps = (CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | CLIENT_CONNECT_WITH_DB | CLIENT_PLUGIN_AUTH | CLIENT_CONNECT_ATTRS | CLIENT_ZSTD_COMPRESSION_ALGORITHM | 2 ** 31) >>> 0;
    const h: HandshakeResponse41 = { ...base, capabilities: caps, mariadbCapabilities: 7, database: "βeta", authPluginName: "caching_sha2_password", attributes: new Map([["k", "v".repeat(300)], ["", ""]]), zstdLevel: 9 };
    expect(parseClientHandshake(buildHandshakeResponse41(h))).toEqual({ kind: "response41", response: h });
  });

  test("trailing optional fields may be absent although flagged", () => {
    const caps = CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_CONNECT_WITH_DB | CLIENT_PLUGIN_AUTH | CLIENT_CONNECT_ATTRS;
    const full = buildHandshakeResponse41({ ...base, capabilities: caps, database: "d", authPluginName: "p", attributes: new Map() });
    const cut = full.subarray(0, 32 + 4 + 4); // user, auth response; nothing after
    expect(parseClientHandshake(cut)).toEqual({ kind: "response41", response: { ...base, capabilities: caps } });
  });

  test("capabilities sent on: only what both sides have", () => {
    expect(intersect(0xbfa28d, 0x81fffffe)).toBe(0xbfa28c); // the mariadb client with CLIENT_MYSQL, MariaDB's server without
    expect(intersect(0xffffffff, 0x80000001)).toBe(0x80000001); // unsigned, bit 31 kept
  });

  test("refused, each with the exact bytes", () => {
    const reason = (bytes: Uint8Array | number[]) => {
      const r = parseClientHandshake(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
      return r.kind === "error" ? r.reason : r.kind;
    };
    const hello = (caps: number) => [caps & 0xff, (caps >>> 8) & 0xff, (caps >>> 16) & 0xff, caps >>> 24, 0, 0, 0, 1, 45, ...new Array(23).fill(0)];
    // HandshakeResponse320 (the documentation's example): no CLIENT_PROTOCOL_41.
    expect(reason([0x85, 0x24, 0x00, 0x00, 0x00, 0x6f, 0x6c, 0x64, 0x00, 0x47, 0x44, 0x53, 0x43, 0x51, 0x59, 0x52, 0x5f])).toBe("protocol_320_unsupported");
    expect(reason([0x00, 0x02, 0x00])).toBe("truncated_capabilities");
    expect(reason([0x00, 0x02, 0x00, 0x00, 0, 0, 0])).toBe("truncated_max_packet_size");
    expect(reason(hello(0x200).slice(0, 20))).toBe("truncated_filler");
    expect(reason(hello(0x200))).toBe("truncated_username"); // 32 bytes without CLIENT_SSL
    expect(reason([...hello(0x200), 0x61])).toBe("truncated_username"); // no NUL
    expect(reason([...hello(0x200 | CLIENT_SECURE_CONNECTION), 0x61, 0, 20, 1, 2])).toBe("truncated_auth_response");
    expect(reason([...hello(0x200 | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA), 0x61, 0, 0xfb])).toBe("bad_lenenc_auth_response");
    expect(reason([...hello(0x200 | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA), 0x61, 0, 0xfe, 0, 0, 0, 0, 0, 0, 0x40, 0])).toBe("integer_too_large");
    expect(reason([...hello(0x200), 0x61, 0, 1, 2])).toBe("truncated_auth_response"); // NUL variant without its NUL
    expect(reason([...hello(0x200 | CLIENT_SECURE_CONNECTION | CLIENT_CONNECT_WITH_DB), 0x61, 0, 0, 0x64])).toBe("truncated_database");
    expect(reason([...hello(0x200 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH), 0x61, 0, 0, 0x70])).toBe("truncated_auth_plugin_name");
    const attrs = 0x200 | CLIENT_SECURE_CONNECTION | CLIENT_CONNECT_ATTRS;
    expect(reason([...hello(attrs), 0x61, 0, 0, 5, 1, 0x6b])).toBe("bad_attributes"); // longer than the packet
    expect(reason([...hello(attrs), 0x61, 0, 0, 2, 1, 0x6b])).toBe("bad_attributes"); // a key without its value
    expect(reason([...hello(attrs), 0x61, 0, 0, 3, 3, 0x6b, 0x6b])).toBe("bad_attributes"); // a key longer than the block
  });

  test("the builders refuse what would not parse back", () => {
    expect(() => buildSslRequest({ capabilities: CLIENT_PROTOCOL_41, mariadbCapabilities: 0, maxPacketSize: 0, characterSet: 45 })).toThrow(RangeError);
    expect(() => buildHandshakeResponse41({ ...base, capabilities: CLIENT_SECURE_CONNECTION })).toThrow(RangeError);
    expect(() => buildHandshakeResponse41({ ...base, capabilities: CLIENT_PROTOCOL_41, user: "a\0b" })).toThrow(RangeError);
  });
});
