import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  buildAuthMoreData, buildAuthSwitchRequest, CACHING_SHA2_FAST_AUTH_SUCCESS, CACHING_SHA2_PASSWORD, CACHING_SHA2_PERFORM_FULL_AUTH,
  CACHING_SHA2_REQUEST_PUBLIC_KEY, MYSQL_NATIVE_PASSWORD, parseAuthReply, parseAuthSwitchRequest,
} from "../../src/mysql/auth-packets.ts";
import { CLIENT_DEPRECATE_EOF, CLIENT_PROTOCOL_41, CLIENT_SESSION_TRACK, CLIENT_TRANSACTIONS, SERVER_SESSION_STATE_CHANGED, SERVER_STATUS_AUTOCOMMIT } from "../../src/mysql/capabilities.ts";
import { parseInitialHandshake } from "../../src/mysql/initial-handshake.ts";
import { frameMessage, messagePayload } from "../../src/mysql/packet-framer.ts";
import { PayloadReader } from "../../src/mysql/payload-reader.ts";
import { PayloadWriter, toPackets } from "../../src/mysql/payload-writer.ts";
import { buildErr, buildOk, ER_BAD_DB_ERROR, ER_NOT_SUPPORTED_AUTH_MODE, parseEof, parseErr, parseOk } from "../../src/mysql/response-packets.ts";
import { fixture } from "../helpers/fixtures.ts";

// Captured from Debian 12's mariadbd 10.11.19 through test/fixtures/smtp-mysql-record-relay.py
// (mysql-packet-framer.test.ts says how the server was set up):
//   switchnative: mariadb -uapp -psecret --ssl=0 --default-auth=client_ed25519 alpha: the client answers for
//                 ed25519, the server (app uses mysql_native_password) sends an AuthSwitchRequest carrying its
//                 plugin and scramble, the client answers that, OK. The exchange a routing proxy makes.
//   ed25519:      mariadb -uedu -psecret alpha (edu is IDENTIFIED VIA ed25519): a switch to client_ed25519
//   wrongpw:      mariadb -uapp -pwrong alpha: ERR 1045 (28000)
//   nodb:         mariadb -uapp -psecret nosuchdb: ERR 1044 (42000)
// MariaDB cannot serve caching_sha2_password (MySQL 8's default): its packets below are built from the
// formats in MySQL's documentation (page_caching_sha2_authentication_exchanges.html and
// page_protocol_connection_phase_packets_protocol_auth_more_data.html), and the AuthSwitchResponse
// example bytes are copied from page_protocol_connection_phase_packets_protocol_auth_switch_response.html.
type Packet = { sequenceId: number; payload: Uint8Array };
function packets(name: string): Packet[] {
  const stream = fixture(name);
  const out: Packet[] = [];
  for (let at = 0; at < stream.length;) {
    const f = frameMessage(stream, at, 1 << 20);
    if (f.kind !== "message") throw new Error(f.kind);
    out.push({ sequenceId: f.sequenceId, payload: messagePayload(stream, at, f) });
    at += f.size;
  }
  return out;
}
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const enc = new TextEncoder();
const ALL = 0xffffffff;
/** The capabilities the captured sessions ran with: the mariadb client's and MariaDB's, intersected. */
const SESSION_CAPS = 0xbfa28c & 0x81fffffe;

function nativeToken(password: string, scramble: Uint8Array): Uint8Array {
  const sha1 = (...parts: Uint8Array[]) => new Uint8Array(createHash("sha1").update(Buffer.concat(parts)).digest());
  const p1 = sha1(enc.encode(password));
  const p3 = sha1(scramble, sha1(p1));
  return p1.map((b, i) => b ^ p3[i]!);
}

describe("captured authentication exchanges", () => {
  test("AuthSwitchRequest to mysql_native_password: the server's scramble, and the client answers it", () => {
    const server = packets("mysql-switchnative-server");
    const client = packets("mysql-switchnative-client");
    const greeting = parseInitialHandshake(server[0]!.payload);
    if (greeting.kind !== "handshake") throw new Error(greeting.kind);
    const r = parseAuthReply(server[1]!.payload, SESSION_CAPS);
    if (r.kind !== "auth-switch") throw new Error(r.kind);
    expect(server[1]!.sequenceId).toBe(2);
    expect(r.pluginName).toBe(MYSQL_NATIVE_PASSWORD);
    // MariaDB sends the greeting's scramble again, with a NUL, as the proxy's builder does.
    expect(hex(r.data)).toBe(`${hex(greeting.handshake.scramble)}00`);
    expect(hex(buildAuthSwitchRequest(r.pluginName, greeting.handshake.scramble))).toBe(hex(server[1]!.payload));
    // The client's AuthSwitchResponse (sequence 3) is the native token for that scramble.
    expect(client[1]!.sequenceId).toBe(3);
    expect(hex(client[1]!.payload)).toBe(hex(nativeToken("secret", r.data.subarray(0, 20))));
    // Then OK, sequence 4, with the session-state change for the default database.
    expect(server[2]!.sequenceId).toBe(4);
    expect(parseAuthReply(server[2]!.payload, SESSION_CAPS)).toEqual({
      kind: "ok",
      ok: { affectedRows: 0, lastInsertId: 0, statusFlags: SERVER_SESSION_STATE_CHANGED | SERVER_STATUS_AUTOCOMMIT, warnings: 0, info: "", sessionStateChanges: new Uint8Array([1, 6, 5, ...enc.encode("alpha")]) },
    });
  });

  test("AuthSwitchRequest to client_ed25519 (a 32-byte nonce, answered with a 64-byte signature)", () => {
    const server = packets("mysql-ed25519-server");
    const r = parseAuthReply(server[1]!.payload, SESSION_CAPS);
    if (r.kind !== "auth-switch") throw new Error(r.kind);
    expect([r.pluginName, r.data.length]).toEqual(["client_ed25519", 32]);
    expect(hex(buildAuthSwitchRequest(r.pluginName, r.data, false))).toBe(hex(server[1]!.payload));
    expect(packets("mysql-ed25519-client")[1]!.payload.length).toBe(64);
  });

  test("ERR for a wrong password and for a database the user may not use", () => {
    expect(parseAuthReply(packets("mysql-wrongpw-server")[1]!.payload, SESSION_CAPS)).toEqual({
      kind: "err", err: { code: 1045, sqlState: "28000", message: "Access denied for user 'app'@'localhost' (using password: YES)" },
    });
    expect(parseAuthReply(packets("mysql-nodb-server")[1]!.payload, SESSION_CAPS)).toEqual({
      kind: "err", err: { code: 1044, sqlState: "42000", message: "Access denied for user 'app'@'%' to database 'nosuchdb'" },
    });
  });

  test("EOF packets of the result set (the mariadb client does not set CLIENT_DEPRECATE_EOF)", () => {
    const server = packets("mysql-native-server");
    expect(parseEof(server[4]!.payload, SESSION_CAPS)).toEqual({ kind: "eof", eof: { warnings: 0, statusFlags: SERVER_STATUS_AUTOCOMMIT } });
    expect(parseEof(server[1]!.payload, SESSION_CAPS)).toEqual({ kind: "error", reason: "not_eof_packet" });
  });

  test("PyMySQL's OK without CLIENT_SESSION_TRACK", () => {
    const ok = packets("mysql-pymysql-server")[1]!.payload;
    expect(parseOk(ok, 0x3aa20d & 0x81fffffe)).toEqual({ kind: "ok", ok: { affectedRows: 0, lastInsertId: 0, statusFlags: SERVER_STATUS_AUTOCOMMIT, warnings: 0, info: "", sessionStateChanges: null } });
  });
});

describe("caching_sha2_password (MySQL 8), from the documented formats", () => {
  const scramble = enc.encode("0123456789abcdefghij");

  test("the switch a proxy sends for a MySQL 8 server", () => {
    const payload = buildAuthSwitchRequest(CACHING_SHA2_PASSWORD, scramble);
    expect(new TextDecoder().decode(payload.subarray(1, 23))).toBe("caching_sha2_password\0");
    expect(parseAuthSwitchRequest(payload)).toEqual({ kind: "auth-switch", pluginName: CACHING_SHA2_PASSWORD, data: new Uint8Array([...scramble, 0]) });
  });

  test("fast path: AuthMoreData 0x03, then OK", () => {
    const wire = toPackets(buildAuthMoreData(new Uint8Array([CACHING_SHA2_FAST_AUTH_SUCCESS])), 4);
    expect(hex(wire)).toBe("0200000401" + "03");
    expect(parseAuthReply(wire.subarray(4), ALL)).toEqual({ kind: "auth-more-data", data: new Uint8Array([0x03]) });
    expect(parseAuthReply(buildOk(SERVER_STATUS_AUTOCOMMIT, CLIENT_PROTOCOL_41), CLIENT_PROTOCOL_41).kind).toBe("ok");
  });

  test("full path: AuthMoreData 0x04; without TLS the client asks for the key (0x02) and gets it as AuthMoreData", () => {
    expect(parseAuthReply(new Uint8Array([0x01, CACHING_SHA2_PERFORM_FULL_AUTH]), ALL)).toEqual({ kind: "auth-more-data", data: new Uint8Array([0x04]) });
    expect(CACHING_SHA2_REQUEST_PUBLIC_KEY).toBe(0x02);
    const pem = enc.encode("-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----\n");
    expect(parseAuthReply(buildAuthMoreData(pem), ALL)).toEqual({ kind: "auth-more-data", data: pem });
  });

  test("the documentation's AuthSwitchResponse example frames as one 20-byte packet, sequence 3", () => {
    const doc = new Uint8Array(Buffer.from("14000003f417961f79f3ac100bdaa6b3b5c20eab5985ffb8", "hex"));
    expect(frameMessage(doc, 0, 1024)).toEqual({ kind: "message", sequenceId: 3, lastSequenceId: 3, packets: 1, payloadLength: 20, size: 24 });
  });
});

describe("OK, ERR and EOF", () => {
  test("OK variants: info as string<EOF>, session track, CLIENT_TRANSACTIONS only, 0xFE with CLIENT_DEPRECATE_EOF", () => {
    expect(parseOk(new Uint8Array([0, 5, 0xfc, 0x10, 0x27, 2, 0, 1, 0, ...enc.encode("Rows matched: 5")]), CLIENT_PROTOCOL_41)).toEqual({
      kind: "ok", ok: { affectedRows: 5, lastInsertId: 10000, statusFlags: 2, warnings: 1, info: "Rows matched: 5", sessionStateChanges: null },
    });
    expect(parseOk(new Uint8Array([0, 0, 0, 2, 0, 0, 0, 3, 0x61, 0x62, 0x63]), CLIENT_PROTOCOL_41 | CLIENT_SESSION_TRACK)).toMatchObject({ kind: "ok", ok: { info: "abc" } });
    expect(parseOk(new Uint8Array([0, 1, 2, 3, 0]), CLIENT_TRANSACTIONS)).toMatchObject({ kind: "ok", ok: { affectedRows: 1, lastInsertId: 2, statusFlags: 3, warnings: 0 } });
    expect(parseOk(new Uint8Array([0xfe, 0, 0, 2, 0, 0, 0, 0, 0, 0]), CLIENT_PROTOCOL_41 | CLIENT_DEPRECATE_EOF).kind).toBe("ok");
  });

  test("ERR without the SQLSTATE marker (a server refusing before the handshake)", () => {
    expect(parseErr(new Uint8Array([0xff, 0x10, 0x04, 0x54, 0x6f, 0x6f]))).toEqual({ kind: "err", err: { code: 1040, sqlState: null, message: "Too" } });
  });

  test("the proxy's ERR packets round-trip, framed with the sequence id the client expects next", () => {
    const payload = buildErr({ ...ER_BAD_DB_ERROR, message: "Unknown database 'gamma' (no_route)" });
    expect(parseErr(payload)).toEqual({ kind: "err", err: { code: 1049, sqlState: "42000", message: "Unknown database 'gamma' (no_route)" } });
    const wire = toPackets(payload, 2);
    expect(hex(wire.subarray(0, 4 + 9))).toBe(`${(payload.length).toString(16).padStart(2, "0")}000002ff1904233432303030`);
    const notSupported = buildErr({ ...ER_NOT_SUPPORTED_AUTH_MODE, message: "Client does not support authentication protocol requested by server; consider upgrading MySQL client" });
    expect(parseErr(notSupported)).toMatchObject({ kind: "err", err: { code: 1251, sqlState: "08004" } });
    expect(() => buildErr({ code: 1, sqlState: "4200", message: "" })).toThrow(RangeError);
  });

  test("refused, each with the exact bytes", () => {
    expect(parseOk(new Uint8Array([]), ALL)).toEqual({ kind: "error", reason: "truncated_header" });
    expect(parseOk(new Uint8Array([0x01, 0, 0]), ALL)).toEqual({ kind: "error", reason: "not_ok_packet" });
    expect(parseOk(new Uint8Array([0xfe, 0, 0, 2, 0, 0, 0]), ALL)).toEqual({ kind: "error", reason: "not_ok_packet" }); // an EOF, not an OK
    expect(parseOk(new Uint8Array([0, 0xfb]), ALL)).toEqual({ kind: "error", reason: "bad_lenenc_affected_rows" });
    expect(parseOk(new Uint8Array([0, 0, 0, 2]), CLIENT_PROTOCOL_41)).toEqual({ kind: "error", reason: "truncated_status_flags" });
    expect(parseOk(new Uint8Array([0, 0, 0, 2, 0, 0, 0, 5, 0x61]), CLIENT_PROTOCOL_41 | CLIENT_SESSION_TRACK)).toEqual({ kind: "error", reason: "truncated_info" });
    expect(parseErr(new Uint8Array([0x00]))).toEqual({ kind: "error", reason: "not_err_packet" });
    expect(parseErr(new Uint8Array([0xff, 0x15]))).toEqual({ kind: "error", reason: "truncated_error_code" });
    expect(parseErr(new Uint8Array([0xff, 0x15, 0x04, 0x23, 0x32, 0x38]))).toEqual({ kind: "error", reason: "truncated_sql_state" });
    expect(parseEof(new Uint8Array([0xfe, 0, 0]), CLIENT_PROTOCOL_41)).toEqual({ kind: "error", reason: "truncated_status_flags" });
    expect(parseAuthReply(new Uint8Array([]), ALL)).toEqual({ kind: "error", reason: "unexpected_auth_packet" });
    expect(parseAuthReply(new Uint8Array([0x02, 0x00]), ALL)).toEqual({ kind: "error", reason: "unexpected_auth_packet" });
    expect(parseAuthReply(new Uint8Array([0xfe]), ALL)).toEqual({ kind: "old-auth-switch" });
    expect(parseAuthReply(new Uint8Array([0xfe, 0x61, 0x62]), ALL)).toEqual({ kind: "error", reason: "truncated_plugin_name" });
    expect(parseAuthReply(new Uint8Array([0xfe, 0x00, 0x61]), ALL)).toEqual({ kind: "error", reason: "empty_plugin_name" });
  });
});

describe("length-encoded integers and strings (page_protocol_basic_dt_integers.html)", () => {
  const cases: [number, string][] = [
    [0, "00"], [250, "fa"], [251, "fcfb00"], [0xffff, "fcffff"], [0x10000, "fd000001"], [0xffffff, "fdffffff"],
    [0x1000000, "fe0000000100000000"], [Number.MAX_SAFE_INTEGER, "feffffffffffff1f00"],
  ];
  for (const [n, wire] of cases) {
    test(`${n}`, () => {
      expect(hex(new PayloadWriter().lenencInt(n).payload())).toBe(wire);
      const r = new PayloadReader(new Uint8Array(Buffer.from(wire, "hex")));
      expect(r.lenencInt("n")).toBe(n);
      expect(r.left).toBe(0);
    });
  }

  test("strings, and what is refused", () => {
    const w = new PayloadWriter().lenencString("").lenencString("x".repeat(300)).nulString("abc");
    const r = new PayloadReader(w.payload());
    expect([r.lenencString("a"), r.lenencString("b").length, r.nulString("c"), r.left]).toEqual(["", 300, "abc", 0]);
    const read = (h: string) => {
      try {
        return new PayloadReader(new Uint8Array(Buffer.from(h, "hex"))).lenencInt("n");
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(read("fb")).toBe("bad_lenenc_n"); // NULL in a row, never a length
    expect(read("ff")).toBe("bad_lenenc_n");
    expect(read("fc01")).toBe("truncated_n");
    expect(read("fe0000000000002000")).toBe("integer_too_large"); // 2^53
    expect(() => new PayloadWriter().lenencInt(-1)).toThrow(RangeError);
    expect(() => new PayloadWriter().lenencInt(2 ** 53)).toThrow(RangeError);
  });
});
