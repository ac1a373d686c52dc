/**
 * The postgres module's own per-connection state (ProtocolModule.newState): where the startup
 * exchange stands, and the backend's startup replies while they are watched for BackendKeyData.
 * @module
 */
import type { ByteQueue } from "../net/byte-queue.ts";

export class PgState {
  /** What the client's next bytes are: a startup-phase message, or a ClientHello (after 'S', or direct TLS). */
  phase: "startup" | "tls-hello" = "startup";
  /** Still reading the backend's first messages for its BackendKeyData (src/postgres/cancel.ts). */
  watchingBackend = true;
  /** The backend's bytes of a message not yet whole, while watching; made on first need. */
  backendPending: ByteQueue | null = null;
}
