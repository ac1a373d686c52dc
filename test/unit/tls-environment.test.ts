import { describe, expect, test } from "bun:test";
import { loadConfig, ConfigError } from "../../src/config/load.ts";
import type { ConfigFlags } from "../../src/config/flags.ts";

/** `serve tcp` with no file and no other flag. */
const FLAGS: ConfigFlags = { mode: "tcp", listen: [], backend: null, workers: null, relay: null, resolver: null, admin: null, logLevel: null, logFormat: null };

function load(env: Record<string, string>) {
  return loadConfig({ file: null, flags: FLAGS, env });
}

describe("PROXY_TLS_* (the reference proxy's PostgreSQL TLS)", () => {
  test("PROXY_TLS_ENABLED makes the PostgreSQL port a postgres listener with the certificate; MySQL stays tcp", () => {
    const c = load({ TCP_BACKEND_ENDPOINT: "127.0.0.1:5433", PROXY_TLS_ENABLED: "true", PROXY_TLS_CERT: "/c.pem", PROXY_TLS_KEY: "/c.key",
      PROXY_TLS_CA: "/ca.pem", PROXY_TLS_REQUIRE_CLIENT_CERT: "false" });
    const pg = c.listeners.find((l) => l.name === "postgres")!;
    expect(pg.protocol).toBe("postgres");
    expect(pg.defaultCert).toEqual({ cert: "/c.pem", key: "/c.key" });
    expect(pg.mtls).toEqual({ ca: "/ca.pem", requireClientCert: false });
    expect(c.listeners.find((l) => l.name === "mysql")!.protocol).toBe("tcp");
  });

  test("without PROXY_TLS_ENABLED nothing changes", () => {
    const c = load({ TCP_BACKEND_ENDPOINT: "127.0.0.1:5433", PROXY_TLS_CERT: "/c.pem" });
    expect(c.listeners.find((l) => l.name === "postgres")!.protocol).toBe("tcp");
  });

  test("a missing key is reported against the variables", () => {
    try {
      load({ TCP_BACKEND_ENDPOINT: "127.0.0.1:5433", PROXY_TLS_ENABLED: "1", PROXY_TLS_CERT: "/c.pem" });
      throw new Error("expected a ConfigError");
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).lines).toEqual(["PROXY_TLS_CERT/PROXY_TLS_KEY: a certificate needs both cert and key (file paths)"]);
    }
  });
});
