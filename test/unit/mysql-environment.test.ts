import { describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/config/load.ts";
import type { ConfigFlags } from "../../src/config/flags.ts";

/** `serve tcp` with no file and no other flag. */
const FLAGS: ConfigFlags = { mode: "tcp", listen: [], backend: null, workers: null, relay: null, resolver: null, admin: null, logLevel: null, logFormat: null };

const mysqlListener = (env: Record<string, string>) => loadConfig({ file: null, flags: FLAGS, env }).listeners.find((l) => l.name === "mysql")!;

describe("TCP_MYSQL_PORT with no file", () => {
  test("with PROXY_RESOLVER it is a mysql listener (the resolver routes on ctx.user and ctx.database); the backend is the fallback route", () => {
    const l = mysqlListener({ TCP_MYSQL_PORT: "13306", PROXY_RESOLVER: "/etc/switchyard/resolver.js", TCP_BACKEND_ENDPOINT: "10.0.0.5:3306" });
    expect(l.protocol).toBe("mysql");
    expect(l.listen).toEqual([{ kind: "inet", host: "0.0.0.0", port: 13306, literal: true }]);
    expect(l.routes.map((r) => r.upstreams.map((u) => u.text))).toEqual([["10.0.0.5:3306"]]);
  });

  test("with PROXY_RESOLVER alone there is no fallback route", () => {
    const l = mysqlListener({ PROXY_RESOLVER: "/etc/switchyard/resolver.js" });
    expect(l.protocol).toBe("mysql");
    expect(l.routes).toEqual([]);
  });

  test("with only TCP_BACKEND_ENDPOINT it stays a plain TCP relay, as in the reference proxy", () => {
    const l = mysqlListener({ TCP_MYSQL_PORT: "13306", TCP_BACKEND_ENDPOINT: "10.0.0.5:3306" });
    expect(l.protocol).toBe("tcp");
  });

  test("the PostgreSQL port is not changed by PROXY_RESOLVER", () => {
    const c = loadConfig({ file: null, flags: FLAGS, env: { PROXY_RESOLVER: "/r.js" } });
    expect(c.listeners.find((l) => l.name === "postgres")!.protocol).toBe("tcp");
  });
});
