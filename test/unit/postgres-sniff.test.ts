import { describe, expect, test } from "bun:test";
import { sniffPostgres, CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE } from "../../src/sniff/postgres.ts";
import { fixture } from "../helpers/fixtures.ts";

function be32(...values: number[]): number[] {
  return values.flatMap((v) => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);
}

const startup = fixture("pg-startup-psql"); // psql 15, sslmode=disable, dbname=orders user=alice
const sslRequest = fixture("pg-sslrequest-psql"); // psql 15, sslmode=require

function byteByByte(bytes: Uint8Array) {
  for (let n = 0; n < bytes.length; n++) expect(sniffPostgres(bytes.subarray(0, n)).kind).toBe("need-more");
  return sniffPostgres(bytes);
}

describe("captured psql messages, whole and one byte at a time", () => {
  test("StartupMessage: database and user", () => {
    for (const r of [sniffPostgres(startup), byteByByte(startup)]) {
      expect(r.kind).toBe("match");
      if (r.kind !== "match" || r.facts.kind !== "startup") throw new Error("not a startup");
      expect(r.facts.database).toBe("orders");
      expect(r.facts.user).toBe("alice");
      expect(r.facts.version).toBe(196608);
      expect(r.facts.params.get("application_name")).toBe("psql");
      expect(r.facts.length).toBe(startup.length);
    }
  });

  test("SSLRequest", () => {
    const r = byteByByte(sslRequest);
    expect(r).toEqual({ kind: "match", facts: { kind: "ssl-request", length: 8 } });
  });
});

describe("built from the protocol documentation", () => {
  test("GSSENCRequest", () => {
    expect(sniffPostgres(new Uint8Array(be32(8, GSSENC_REQUEST_CODE)))).toEqual({ kind: "match", facts: { kind: "gssenc-request", length: 8 } });
  });

  test("CancelRequest: pid and key", () => {
    const r = byteByByte(new Uint8Array(be32(16, CANCEL_REQUEST_CODE, 4242, 0xdeadbeef)));
    if (r.kind !== "match" || r.facts.kind !== "cancel") throw new Error("not a cancel");
    expect(r.facts.pid).toBe(4242);
    expect([...r.facts.key]).toEqual([0xde, 0xad, 0xbe, 0xef]);
  });

  test("database defaults to the user", () => {
    const body = new TextEncoder().encode("user\0bob\0\0");
    const r = sniffPostgres(new Uint8Array([...be32(8 + body.length, 196608), ...body]));
    expect(r.kind === "match" && r.facts.kind === "startup" && r.facts.database).toBe("bob");
  });

  test("named reasons", () => {
    const reason = (b: number[]) => { const r = sniffPostgres(new Uint8Array(b)); return r.kind === "no-match" ? r.reason : r.kind; };
    expect(reason([0x16, 3, 1, 0, 200])).toBe("tls");
    expect(reason(be32(4, 196608))).toBe("bad_length");
    expect(reason(be32(100_000, 196608))).toBe("bad_length");
    expect(reason(be32(12, 0x00020000, 0))).toBe("bad_code");
    expect(reason([...be32(13, 196608), 0x61, 0, 0x62, 0, 0])).toBe("no_user");
    expect(reason([...be32(12, 196608), 0x61, 0x62, 0x63, 0x64])).toBe("truncated_parameters");
    expect(reason(be32(9, 80877103, 0))).toBe("bad_length");
  });
});
