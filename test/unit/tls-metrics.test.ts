import { expect, test } from "bun:test";
import { Metrics } from "../../src/control/metrics.ts";

test("TLS handshakes by mode and refusals by reason, per listener, in Prometheus text and JSON", () => {
  const m = new Metrics();
  m.countTls(m.tlsHandshakes, "edge", "terminate");
  m.countTls(m.tlsHandshakes, "edge", "terminate");
  m.countTls(m.tlsHandshakes, "edge", "passthrough");
  m.countTls(m.tlsRefused, "edge", "ja3_blocked");
  const text = m.toPrometheus();
  expect(text).toContain('switchyard_tls_handshakes_total{listener="edge",mode="terminate"} 2');
  expect(text).toContain('switchyard_tls_handshakes_total{listener="edge",mode="passthrough"} 1');
  expect(text).toContain('switchyard_tls_refused_total{listener="edge",reason="ja3_blocked"} 1');
  expect(m.toJSON()).toMatchObject({ tlsHandshakes: { "edge/terminate": 2, "edge/passthrough": 1 }, tlsRefused: { "edge/ja3_blocked": 1 } });
});

test("refusals before routing: per protocol in switchyard_refused_total, and still under the old series for one version", () => {
  const m = new Metrics();
  m.countRefused("edge", "tls", "ja3_blocked");
  m.countRefused("db", "postgres", "malformed_startup");
  m.countRefused("db", "postgres", "malformed_startup");
  const text = m.toPrometheus();
  expect(text).toContain('switchyard_refused_total{listener="edge",protocol="tls",reason="ja3_blocked"} 1');
  expect(text).toContain('switchyard_refused_total{listener="db",protocol="postgres",reason="malformed_startup"} 2');
  expect(text).toContain('switchyard_tls_refused_total{listener="db",reason="malformed_startup"} 2');
  expect(m.toJSON()).toMatchObject({ refused: { "edge/tls/ja3_blocked": 1, "db/postgres/malformed_startup": 2 } });
  const sum = new Metrics();
  sum.add(m.snapshot());
  sum.add(m.snapshot());
  expect(sum.toJSON()).toMatchObject({ refused: { "db/postgres/malformed_startup": 4 }, tlsRefused: { "db/malformed_startup": 4 } });
});
