/**
 * ErrorResponse, as a PostgreSQL server sends it before closing a connection it will not serve, so
 * a client that the proxy refuses after its StartupMessage says why (psql: `FATAL:  no route …`)
 * instead of "server closed the connection unexpectedly".
 * https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-ERRORRESPONSE
 * https://www.postgresql.org/docs/current/protocol-error-fields.html
 * Pure: no Bun.
 * @module
 */

const ERROR_RESPONSE = 0x45; // 'E'
const FIELD_SEVERITY = 0x53; // 'S', localized
const FIELD_SEVERITY_NONLOCALIZED = 0x56; // 'V' (PostgreSQL 9.6 and later)
const FIELD_CODE = 0x43; // 'C'
const FIELD_MESSAGE = 0x4d; // 'M'

// https://www.postgresql.org/docs/current/errcodes-appendix.html
/** invalid_catalog_name: what a server answers for a database it does not have. */
export const SQLSTATE_INVALID_CATALOG_NAME = "3D000";
/** sqlserver_rejected_establishment_of_sqlconnection. */
export const SQLSTATE_REJECTED_CONNECTION = "08004";

/** A FATAL ErrorResponse with `code` (SQLSTATE) and `message`. */
export function fatalError(code: string, message: string): Uint8Array {
  const fields: [number, string][] = [[FIELD_SEVERITY, "FATAL"], [FIELD_SEVERITY_NONLOCALIZED, "FATAL"], [FIELD_CODE, code], [FIELD_MESSAGE, message]];
  const encoded = fields.map(([type, value]) => [type, new TextEncoder().encode(value)] as const);
  const length = 4 + encoded.reduce((n, [, v]) => n + 1 + v.length + 1, 0) + 1;
  const out = new Uint8Array(1 + length);
  const view = new DataView(out.buffer);
  out[0] = ERROR_RESPONSE;
  view.setUint32(1, length);
  let pos = 5;
  for (const [type, value] of encoded) {
    out[pos++] = type;
    out.set(value, pos);
    pos += value.length + 1; // the NUL is already there
  }
  return out; // the last byte, 0, ends the field list
}
