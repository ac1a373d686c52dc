/**
 * The client's side of an SMTP session as a pull parser: the session pushes what it reads and
 * pulls one event at a time, so it can stop pulling while it waits for a backend's reply (the way
 * Envoy's connection manager pauses its parser between pipelined requests) and pipelined commands
 * are answered strictly in order.
 *
 * It composes the three layers: CommandFramer (lines, over-long lines skipped in step),
 * parseCommand, and DataBodyScanner (the message after DATA). The session decides when a message
 * starts: it calls `startData()` once it has answered DATA with 354 (RFC 5321 §4.1.1.4; RFC 2920
 * §3.1 makes DATA the last command of a pipelined group, so the client waits for that 354 before
 * the body). Bytes are handed out as views of what was pushed, not copies, for the session to relay.
 *
 * Pure: no Bun, no sockets, no timers. Bounded: the queue never holds more than one command line
 * (the framer skips over-long ones) plus what one push brought.
 * @module
 */
import { ByteQueue } from "../net/byte-queue.ts";
import { CommandFramer, MAX_COMMAND_LINE_BYTES } from "./command-framer.ts";
import { parseCommand, type SmtpCommand } from "./command.ts";
import { DataBodyScanner } from "./data-body.ts";
import { SMTP_ERRORS, type SmtpErrorReason } from "./errors.ts";

export type ClientEvent =
  /** Nothing complete is queued: push more. */
  | { readonly kind: "need-more" }
  /** A command; `line` is its bytes with the CRLF, to replay to a backend as sent. */
  | { readonly kind: "command"; readonly command: SmtpCommand; readonly line: Uint8Array }
  /**
   * Answer with SMTP_ERRORS[reason]; `closes` (from that table) says the session must close after
   * answering, and the reader refuses to go on (every later `next` repeats this event).
   */
  | { readonly kind: "error"; readonly reason: SmtpErrorReason; readonly closes: boolean }
  /** Message bytes to relay as they are (dot-stuffing included); the message goes on. */
  | { readonly kind: "data"; readonly bytes: Uint8Array; readonly tooLarge: boolean }
  /**
   * The last message bytes, terminator included; commands follow. `messageBytes` is the RFC 1870
   * size; `tooLarge` means it passed the limit (answer 552, SMTP_ERRORS.message_too_large).
   */
  | { readonly kind: "message-end"; readonly bytes: Uint8Array; readonly messageBytes: number; readonly tooLarge: boolean };

export interface ClientReaderOptions {
  /** Longest command line, CRLF included (RFC 5321 §4.5.3.1.4: at least 512). */
  readonly lineLimit?: number;
  /** `smtp.maxMessageBytes`: the RFC 1870 size past which a message is `tooLarge`. */
  readonly maxMessageBytes?: number;
  /** Most bytes one push may bring on top of a pending partial line (the socket's read size). */
  readonly maxReadBytes?: number;
}

const NEED_MORE = { kind: "need-more" } as const;

export class SmtpClientReader {
  readonly #queue: ByteQueue;
  readonly #framer: CommandFramer;
  readonly #body: DataBodyScanner;
  #inData = false;
  #failed: ClientEvent | null = null;

  constructor(options: ClientReaderOptions = {}) {
    this.#framer = new CommandFramer(options.lineLimit ?? MAX_COMMAND_LINE_BYTES);
    this.#body = new DataBodyScanner(options.maxMessageBytes ?? Infinity);
    // A partial line (< lineLimit) plus one read: more than that means the caller pushed without pulling.
    this.#queue = new ByteQueue(this.#framer.limit + (options.maxReadBytes ?? 256 * 1024), "smtp_client_unread");
  }

  /** Bytes pushed and not yet handed out. */
  get pending(): number {
    return this.#queue.size;
  }

  /** True between `startData()` and the message's end. */
  get inData(): boolean {
    return this.#inData;
  }

  /**
   * Queue bytes read from the client; false when that would pass the bound (close the session).
   * After a closing error the bytes are dropped: the session is only answering and closing.
   */
  push(bytes: Uint8Array): boolean {
    if (this.#failed !== null) return true;
    return this.#queue.push(bytes);
  }

  /** The next message starts with the next byte (the session has sent 354). */
  startData(): void {
    this.#body.reset();
    this.#inData = true;
  }

  /**
   * Drop everything queued and return how many bytes that was: after STARTTLS, bytes the client
   * pipelined before the TLS handshake must not be taken as commands (CVE-2011-0411).
   */
  discardPending(): number {
    const n = this.#queue.size;
    this.#queue.clear();
    return n;
  }

  /** The next event. */
  next(): ClientEvent {
    if (this.#failed !== null) return this.#failed;
    if (this.#queue.size === 0) return NEED_MORE;
    if (this.#inData) return this.#nextData(this.#queue.bytes());
    for (;;) {
      const all = this.#queue.bytes();
      const frame = this.#framer.next(all);
      switch (frame.kind) {
        case "need-more":
          return NEED_MORE;
        case "skip":
          this.#queue.consume(frame.size);
          if (this.#queue.size === 0) return NEED_MORE;
          continue;
        case "error":
          this.#queue.consume(frame.size);
          return this.#error(frame.reason);
        case "line": {
          const line = all.subarray(frame.start, frame.start + frame.size);
          this.#queue.consume(frame.size);
          const parsed = parseCommand(all, frame.start, frame.end);
          if (parsed.kind === "error") return this.#error(parsed.reason);
          return { kind: "command", command: parsed, line };
        }
      }
    }
  }

  #nextData(bytes: Uint8Array): ClientEvent {
    const scan = this.#body.scan(bytes);
    switch (scan.kind) {
      case "body":
        this.#queue.consume(scan.size);
        return { kind: "data", bytes: bytes.subarray(0, scan.size), tooLarge: scan.tooLarge };
      case "end":
        this.#queue.consume(scan.size);
        this.#inData = false;
        return { kind: "message-end", bytes: bytes.subarray(0, scan.size), messageBytes: scan.messageBytes, tooLarge: scan.tooLarge };
      case "error":
        this.#queue.clear();
        this.#inData = false;
        return this.#error(scan.reason);
    }
  }

  #error(reason: SmtpErrorReason): ClientEvent {
    const closes = SMTP_ERRORS[reason].closes;
    const event = { kind: "error", reason, closes } as const;
    if (closes) {
      this.#failed = event;
      this.#queue.clear();
    }
    return event;
  }
}
