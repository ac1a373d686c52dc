/**
 * The admin API (SPEC.md). Built so far: GET /health, /metrics (Prometheus text), /metrics.json,
 * /config (secrets redacted), /blocked (refused connections by listener and reason), POST /reload.
 * With workers it runs in the supervisor, and the metrics are the sum over workers. The rest answers 501 and says it is not built yet. Loopback by default;
 * a token (Authorization: Bearer …) is required when it listens anywhere else. Without a token, requests
 * a web page could make (foreign Host or Origin) are refused with 403 (src/control/admin-host.ts).
 * @module
 */
import type { Server } from "bun";
import type { Config } from "../config/types.ts";
import type { Metrics } from "./metrics.ts";
import type { ReloadResult } from "./service.ts";
import { foreignRequest } from "./admin-host.ts";

const NOT_BUILT = ["/connections"];

export interface AdminActions {
  /** The configuration in force now. */
  config(): Config;
  reload(): Promise<ReloadResult>;
  /** The counters now (summed over workers when there are several). */
  metrics(): Metrics | Promise<Metrics>;
}

export function startAdmin(config: Config, actions: AdminActions): Server<undefined> | null {
  const admin = config.admin;
  if (!admin) return null;
  const a = admin.listen;
  // A non-loopback address without a token never gets here: the schema refuses it (src/config/schema.ts).
  const token = admin.token;
  const target = a.kind === "unix" ? { unix: a.path } : { hostname: a.host, port: a.port };
  return Bun.serve({
    ...target,
    async fetch(req) {
      if (token && req.headers.get("authorization") !== `Bearer ${token}`) return new Response("unauthorized\n", { status: 401 });
      const foreign = token || a.kind === "unix" ? null : foreignRequest(req.headers);
      if (foreign) return Response.json({ error: foreign }, { status: 403 });
      const path = new URL(req.url).pathname;
      if (req.method === "GET" && path === "/health") return Response.json({ status: "ok" });
      if (req.method === "GET" && path === "/metrics") return new Response((await actions.metrics()).toPrometheus(), { headers: { "content-type": "text/plain; version=0.0.4" } });
      if (req.method === "GET" && path === "/metrics.json") return Response.json(await actions.metrics());
      if (req.method === "GET" && path === "/blocked") return Response.json(blocked(await actions.metrics()));
      if (req.method === "GET" && path === "/config") return Response.json(redact(actions.config()));
      if (req.method === "POST" && path === "/reload") {
        const result = await actions.reload();
        return Response.json(result, { status: result.ok ? 200 : 422 });
      }
      if (NOT_BUILT.some((p) => path.startsWith(p))) return Response.json({ error: `${path} is not built yet in this version` }, { status: 501 });
      return Response.json({ error: "not found" }, { status: 404 });
    },
  });
}

/** GET /blocked: refused connections by reason, in total and per listener. */
function blocked(metrics: Metrics): { total: Record<string, number>; listeners: Record<string, Record<string, number>> } {
  const total: Record<string, number> = {};
  const listeners: Record<string, Record<string, number>> = {};
  for (const [name, c] of metrics.listeners) {
    listeners[name] = Object.fromEntries(c.blocked);
    for (const [reason, n] of c.blocked) total[reason] = (total[reason] ?? 0) + n;
  }
  return { total, listeners };
}

function redact(config: Config): unknown {
  return { ...config, admin: config.admin && { ...config.admin, token: config.admin.token ? "<redacted>" : null } };
}
