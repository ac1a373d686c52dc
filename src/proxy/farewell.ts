/**
 * What a refused client is told before the close, in its own protocol, when it has said enough to
 * be answered and no upstream has spoken to it yet:
 * - tls listeners, no route for the hello: a fatal unrecognized_name alert (src/tls/alert.ts);
 * - postgres listeners, after the StartupMessage: a FATAL ErrorResponse, SQLSTATE 3D000 for no
 *   route (as a server without that database), 08004 for any other refusal. It goes through
 *   `conn.client`, so over TLS when the proxy terminated it and in plaintext after an 'N'.
 * Anything else closes without a word, as before.
 * @module
 */
import { Conn, UPSTREAM_OPEN } from "./conn.ts";
import { UNRECOGNIZED_NAME_ALERT } from "../tls/alert.ts";
import { fatalError, SQLSTATE_INVALID_CATALOG_NAME, SQLSTATE_REJECTED_CONNECTION } from "../postgres/error-response.ts";

/** The bytes to send before closing `conn` for `reason`, or null. */
export function farewell(conn: Conn, reason: string): Uint8Array | null {
  const p = conn.proto;
  if (!p || conn.flags & UPSTREAM_OPEN) return null;
  switch (conn.listener.config.protocol) {
    case "tls":
      // tls "none": the hello was read and neither handed to a TLS server nor passed through.
      return reason === "no_route" && p.tls === "none" ? UNRECOGNIZED_NAME_ALERT : null;
    case "postgres":
      if (p.database === null) return null; // before the StartupMessage a server says nothing either
      if (reason === "no_route") return fatalError(SQLSTATE_INVALID_CATALOG_NAME, `no route for database "${p.database}" and user "${p.user}" on this proxy`);
      return fatalError(SQLSTATE_REJECTED_CONNECTION, `connection refused by the proxy: ${reason}`);
    default:
      return null;
  }
}
