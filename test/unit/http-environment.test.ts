import { expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../../src/config/load.ts";
import type { ConfigFlags } from "../../src/config/flags.ts";

const FLAGS: ConfigFlags = {
  mode: "http", listen: [], backend: null, workers: null, relay: null, resolver: null, admin: null, logLevel: null, logFormat: null,
};

function load(env: Record<string, string>) {
  return loadConfig({ file: null, flags: { ...FLAGS }, env });
}

test("serve http with HTTP_* builds the reference proxy's HTTP listener (an http listener now)", () => {
  const c = load({ HTTP_BACKEND_ENDPOINT: "10.0.0.2:5678", HTTP_PORT: "18080", HTTP_BACKEND_POOL_SIZE: "128", HTTP_SKIP_VALIDATION: "true", HTTP_WORKERS: "2" });
  const l = c.listeners[0]!;
  expect([l.name, l.protocol, l.listen[0], l.skipValidation]).toEqual(["http", "http", { kind: "inet", host: "0.0.0.0", port: 18080, literal: true }, true]);
  expect(l.routes[0]!.upstreams[0]!.text).toBe("10.0.0.2:5678");
  expect(l.routes[0]!.http!.pool.maxIdle).toBe(128);
  expect(c.workers).toBe(2);
});

test("serve http with an empty environment: port 8080, backend 127.0.0.1:5678, the pool's default", () => {
  const l = load({}).listeners[0]!;
  expect([l.listen[0], l.routes[0]!.upstreams[0]!.text, l.routes[0]!.http!.pool.maxIdle]).toEqual([{ kind: "inet", host: "0.0.0.0", port: 8080, literal: true }, "127.0.0.1:5678", 32]);
});

test("a bad HTTP_BACKEND_POOL_SIZE is reported against the variable", () => {
  try {
    load({ HTTP_BACKEND_POOL_SIZE: "lots" });
    throw new Error("expected a ConfigError");
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    expect(e.lines[0]).toStartWith("HTTP_BACKEND_POOL_SIZE: ");
  }
});
