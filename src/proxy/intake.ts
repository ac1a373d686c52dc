/**
 * What the stages before routing hold for a connection whose listener reads first (the protocol
 * module's speaksFirst is not "unknown"): the collected client bytes, how they are held (read, or
 * peeked and still in the kernel), the socket under a TLS one, and the module's own state. One
 * object, made at accept only on those listeners, so a plain TCP connection carries a null field.
 * @module
 */
import type { Socket } from "bun";
import type { ByteQueue } from "../net/byte-queue.ts";
import { newCollector } from "../sniff/collect.ts";
import type { Conn } from "./conn.ts";

export class Intake {
  /** The client's bytes so far, from its first (src/sniff/collect.ts bounds them). Cleared once handed on. */
  readonly first: ByteQueue = newCollector();
  /**
   * The accepted socket's fd when the first bytes are peeked, not read (src/proxy/hello-peek.ts): they
   * wait in the kernel until the relay or TLS reads them. -1 when they were read.
   */
  peekedFd = -1;
  /** Nonzero while waiting for more bytes of a peeked hello (its notice token). */
  waitToken = 0;
  /** The accepted TCP socket once a TLS socket runs over it (its events are not the relay's). */
  raw: Socket<Conn> | null = null;

  constructor(
    /** The protocol module's per-connection state (ProtocolModule.newState); read only by that module. */
    readonly state: object | null,
  ) {}

  /** Whether the first bytes are still in the kernel (peeked), so nothing has to be sent on for them. */
  get helloInKernel(): boolean {
    return this.peekedFd >= 0;
  }
}
