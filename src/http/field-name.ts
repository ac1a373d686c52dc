/**
 * The field names the framing layer acts on, recognised from the bytes once per field line (by length,
 * then a case-insensitive compare: RFC 9110 §5.1, field names are case-insensitive). Every other name
 * is `OTHER` and is only ever compared on demand. Pure.
 * @module
 */
import { LOWER } from "./chars.ts";

export const FieldId = {
  OTHER: 0,
  HOST: 1,
  CONTENT_LENGTH: 2,
  TRANSFER_ENCODING: 3,
  CONNECTION: 4,
  KEEP_ALIVE: 5,
  PROXY_CONNECTION: 6,
  TE: 7,
  TRAILER: 8,
  UPGRADE: 9,
  PROXY_AUTHORIZATION: 10,
} as const;
export type FieldId = (typeof FieldId)[keyof typeof FieldId];

const NAMES: readonly (readonly [string, FieldId])[] = [
  ["host", FieldId.HOST],
  ["content-length", FieldId.CONTENT_LENGTH],
  ["transfer-encoding", FieldId.TRANSFER_ENCODING],
  ["connection", FieldId.CONNECTION],
  ["keep-alive", FieldId.KEEP_ALIVE],
  ["proxy-connection", FieldId.PROXY_CONNECTION],
  ["te", FieldId.TE],
  ["trailer", FieldId.TRAILER],
  ["upgrade", FieldId.UPGRADE],
  ["proxy-authorization", FieldId.PROXY_AUTHORIZATION],
];

interface Known {
  readonly bytes: Uint8Array;
  readonly id: FieldId;
}

/** Known names by length: the bytes of each lower-case name and its id. */
const BY_LENGTH: Known[][] = [];
for (const [name, id] of NAMES) (BY_LENGTH[name.length] ??= []).push({ bytes: new TextEncoder().encode(name), id });

/** The id of the field name at bytes `s..e` (already validated as a token). */
export function fieldId(bytes: Uint8Array, s: number, e: number): FieldId {
  const candidates = BY_LENGTH[e - s];
  if (candidates === undefined) return FieldId.OTHER;
  outer: for (let c = 0; c < candidates.length; c++) {
    const known = candidates[c]!;
    const name = known.bytes;
    for (let i = 0; i < name.length; i++) if (LOWER[bytes[s + i]!] !== name[i]) continue outer;
    return known.id;
  }
  return FieldId.OTHER;
}
