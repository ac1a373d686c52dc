/**
 * Request heads not in use, per listener configuration (a head's field tables are sized by its
 * maxHeaders: 4 int32 and 2 bytes per field line, ~1.8 KiB at the default 100). A keep-alive
 * connection holds one only while a request is read or answered, so an idle client connection costs
 * none (issue 14: memory per idle keep-alive connection). Sharing is safe: a head given back cannot be
 * resumed (its token is cleared), so the parser fills it from scratch for its next user.
 * @module
 */
import type { HttpListenerConfig } from "../config/types.ts";
import { RequestHead } from "./head.ts";

const FREE = new WeakMap<HttpListenerConfig, RequestHead[]>();

/** The free list of `config`'s heads (a caller may keep it: it never changes identity). */
export function freeRequestHeads(config: HttpListenerConfig): RequestHead[] {
  let list = FREE.get(config);
  if (!list) FREE.set(config, (list = []));
  return list;
}

export function takeRequestHead(config: HttpListenerConfig, free = freeRequestHeads(config)): RequestHead {
  return free.pop() ?? new RequestHead({ maxHeaderBytes: config.maxHeaderBytes, maxHeaders: config.maxHeaders });
}

/** `head` is not referred to any more by its user; `free` is its configuration's list. */
export function giveRequestHead(free: RequestHead[], head: RequestHead): void {
  head.bytes = EMPTY; // do not keep the last request's bytes alive
  head.resumeToken = 0; // a need-more token its last user kept can never resume it for the next
  free.push(head);
}

const EMPTY = new Uint8Array(0);
