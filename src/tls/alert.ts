/**
 * The TLS alerts the proxy sends itself, in plaintext, before any TLS session exists: after reading a
 * ClientHello it will not serve, so the client reports why (`openssl s_client`: "unrecognized
 * name") instead of an unexpected EOF.
 * Record version 0x0303: RFC 8446 §5.1 has TLS 1.3 implementations write 0x0303 on every record but
 * an initial ClientHello, and 0x0303 is TLS 1.2's own; the proxy speaks no older version.
 * @module
 */

// https://www.rfc-editor.org/rfc/rfc8446#section-5.1 (ContentType.alert)
const RECORD_ALERT = 21;
// https://www.rfc-editor.org/rfc/rfc8446#section-6 (AlertLevel.fatal)
const LEVEL_FATAL = 2;
// https://www.rfc-editor.org/rfc/rfc6066#section-3 (AlertDescription.unrecognized_name)
const UNRECOGNIZED_NAME = 112;

/** A fatal unrecognized_name alert record: no route serves the name the hello asked for. */
export const UNRECOGNIZED_NAME_ALERT = new Uint8Array([RECORD_ALERT, 3, 3, 0, 2, LEVEL_FATAL, UNRECOGNIZED_NAME]);
