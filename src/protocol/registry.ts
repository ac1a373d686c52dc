/**
 * The one place that maps a listener's `protocol` to its module (src/protocol/module.ts). Adding a
 * protocol is adding its module here; the schema refuses protocols that have none yet.
 * @module
 */
import type { Protocol } from "../config/types.ts";
import type { ProtocolModule } from "./module.ts";
import { TCP } from "../tcp/module.ts";
import { TLS } from "../tls/module.ts";
import { POSTGRES } from "../postgres/module.ts";
import { SMTP } from "../smtp/module.ts";
import { MYSQL } from "../mysql/module.ts";
import { HTTP } from "../http/module.ts";

const MODULES: ReadonlyMap<Protocol, ProtocolModule> = new Map<Protocol, ProtocolModule>([TCP, TLS, POSTGRES, SMTP, MYSQL, HTTP].map((m) => [m.name, m]));

/** The module of `protocol`; throws for a protocol not built (the schema refuses those first). */
export function protocolModule(protocol: Protocol): ProtocolModule {
  const m = MODULES.get(protocol);
  if (!m) throw new Error(`protocol "${protocol}" is not built in this version`);
  return m;
}
