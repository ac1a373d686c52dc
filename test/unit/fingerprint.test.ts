import { describe, expect, test } from "bun:test";
import { fingerprints, isGrease, ja4FromLists, truncatedSha256 } from "../../src/sniff/fingerprint.ts";
import { sniffClientHello, type ClientHello } from "../../src/sniff/tls-hello.ts";
import { fixture } from "../helpers/fixtures.ts";
import { createHash } from "node:crypto";

function hello(name: string): ClientHello {
  const r = sniffClientHello(fixture(name));
  if (r.kind !== "match") throw new Error(name);
  return r.facts;
}

describe("JA3 of real captured hellos, as tshark 4.0.17 computes them (tls.handshake.ja3_full / ja3)", () => {
  test("openssl s_client", () => {
    const f = fingerprints(hello("hello-openssl"));
    expect(f.ja3Text).toBe("771,4866-4867-4865-49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192-107-49187-49191-103-49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,0-11-10-35-16-22-23-13-43-45-51,29-23-30-25-24-256-257-258-259-260,0-1-2");
    expect(f.ja3).toBe("5a1edc7f170af1014fc65c994878e63c");
  });
  test("curl", () => {
    expect(fingerprints(hello("hello-curl")).ja3).toBe("0149f47eabf9a20d0893e2a44e5a6323");
  });
  test("openssl s_client -tls1_2 -noservername", () => {
    expect(fingerprints(hello("hello-openssl-tls12")).ja3).toBe("fbe7e189e37a07ee33706f86bc746344");
  });
});

describe("published vectors", () => {
  test("JA3 of a published ja3 string (browserleaks.com: Chrome 143)", () => {
    const text = "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0";
    expect(createHash("md5").update(text).digest("hex")).toBe("98487aa16281980e7d1120d399efb6a4");
  });

  test("JA4.md: the cipher example hashes to 8daaf6152771, the extension example to e5627efa2ab1", () => {
    expect(truncatedSha256("002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9")).toBe("8daaf6152771");
    expect(truncatedSha256("0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601")).toBe("e5627efa2ab1");
  });

  test("JA4 from a published JA4_r (browserleaks.com: Chrome 143) gives its published JA4", () => {
    const raw = "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,fe0d,ff01_0403,0804,0401,0503,0805,0501,0806,0601";
    const [a, ciphers, exts, sigs] = raw.split("_") as [string, string, string, string];
    expect(ja4FromLists(a, ciphers.split(","), exts.split(","), sigs.split(","))).toBe("t13d1516h2_8daaf6152771_d8a2da3f94cd");
  });
});

describe("JA4 of captured hellos: the readable part follows JA4.md", () => {
  test("openssl: TLS 1.3, domain, 31 ciphers, 11 extensions, ALPN h2", () => {
    expect(fingerprints(hello("hello-openssl")).ja4.slice(0, 10)).toBe("t13d3111h2");
  });
  test("TLS 1.2 without SNI or ALPN", () => {
    expect(fingerprints(hello("hello-openssl-tls12")).ja4.slice(0, 10)).toBe("t12i280600");
  });
});

describe("GREASE", () => {
  test("the sixteen RFC 8701 values and nothing else", () => {
    const grease = [];
    for (let v = 0; v < 0x10000; v++) if (isGrease(v)) grease.push(v);
    expect(grease.length).toBe(16);
    expect(grease[0]).toBe(0x0a0a);
    expect(grease[15]).toBe(0xfafa);
  });

  test("GREASE values do not change either fingerprint", () => {
    const h = hello("hello-curl");
    const greased: ClientHello = {
      ...h, ciphers: [0x2a2a, ...h.ciphers], extensions: [0x3a3a, ...h.extensions, 0xdada],
      groups: [0x4a4a, ...h.groups], supportedVersions: [0x5a5a, ...h.supportedVersions], signatureAlgorithms: [0x6a6a, ...h.signatureAlgorithms],
    };
    expect(fingerprints(greased)).toEqual(fingerprints(h));
  });
});
