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
