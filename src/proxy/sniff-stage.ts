/**
 * The sniff stage's collection: the client's first bytes gathered in one place (conn.intake.first, a
 * ByteQueue bounded as src/sniff/collect.ts says), by reading them or, for modules that allow it with
 * the native library, by peeking (src/proxy/hello-peek.ts), and handed to the protocol module's
 * sniff, whose step goes back to the pipeline (src/proxy/pipeline.ts acts on it: this file calls no
 * stage). Time is bounded by handshakeTimeoutMs (the sweeper).
 * @module
 */
import type { Conn } from "./conn.ts";
import type { ProtocolModule, SniffStep } from "../protocol/module.ts";
import { refuse } from "../protocol/module.ts";
import { collectorFull } from "../sniff/collect.ts";
import { peekWaitUnavailable } from "../native/peek-wait.ts";
import { nativeStatus } from "../native/index.ts";
import { log } from "../log/logger.ts";

/** A read chunk: collect it and ask the module what the bytes so far say. */
export function collectRead(conn: Conn, chunk: Uint8Array): SniffStep {
  conn.lastActive = performance.now();
  const first = conn.intake!.first;
  if (!first.push(chunk)) return refuse(first.limitReason, `a read of ${chunk.length} bytes after ${first.size}`);
  return sniffCollected(conn);
}

/** Ask the module what the bytes collected so far say. */
export function sniffCollected(conn: Conn): SniffStep {
  const first = conn.intake!.first;
  return conn.listener.module.sniff!(conn, first, collectorFull(first));
}

/**
 * How a listener of `module` collects: by peeking when the module allows it and the native library
 * can wait on peeked sockets; else by reading. Modules that must consume or answer the first bytes
 * (postgres: an SSLRequest is answered, and the TLS after it must not see those 8 bytes) read.
 */
export function collectsByPeeking(module: ProtocolModule): boolean {
  if (!module.peeks) return false;
  const why = peekWaitUnavailable();
  // Without the library the start-up warning covers this; with it, say once why it cannot be used.
  if (why !== null && why !== toldWhy && nativeStatus().loaded) log.warn(`${module.name} listeners read their first bytes and replay them on passthrough: peeked sockets cannot be waited on`, { reason: why });
  toldWhy = why;
  return why === null;
}

let toldWhy: string | null = null;
