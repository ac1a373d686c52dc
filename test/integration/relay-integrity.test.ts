/**
 * Byte integrity over every relay path (test/helpers/integrity.ts): each path runs each exchange,
 * and both peers must receive exactly the other's seeded stream, with EOF where the path carries a
 * half-close. The first exchange is the reproduction of bytes lost on terminated TLS (issue 12).
 */
import { describe, expect, test } from "bun:test";
import { makePki } from "../helpers/certs.ts";
import { EXCHANGES, relayPaths, runExchange } from "../helpers/integrity.ts";

// makePki is synchronous (openssl via spawnSync): the paths exist when the tests are declared.
for (const path of relayPaths(makePki("integrity CA"))) {
  describe(`integrity: ${path.name}`, () => {
    for (const x of EXCHANGES) {
      // A TLS client cannot shut its write side and read on: those paths skip the half-close.
      if (x.halfClose && path.noHalfClose) continue;
      test(x.name, async () => {
        const r = await runExchange(path, x);
        const detail = JSON.stringify({ client: r.client, backend: r.backend, log: r.log });
        expect(r.backend.received, detail).toBe(x.client.send);
        expect(r.backend.firstDiff, detail).toBeNull();
        expect(r.backend.intact, detail).toBe(true);
        expect(r.client.received, detail).toBe(x.backend.send);
        expect(r.client.firstDiff, detail).toBeNull();
        expect(r.client.intact, detail).toBe(true);
        if (x.halfClose) {
          expect(r.backend.eof, "the client's FIN reached the backend after its bytes").toBe(true);
          expect(r.client.eof, "the backend's FIN reached the client after its bytes").toBe(true);
        }
        expect(r.log.length, detail).toBe(1);
        expect(r.log[0]!.bytesIn, detail).toBeGreaterThanOrEqual(x.client.send);
        expect(r.log[0]!.bytesOut, detail).toBeGreaterThanOrEqual(x.backend.send);
      }, 120_000);
    }
  });
}
