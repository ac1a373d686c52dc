/**
 * Responses the proxy writes itself: refusals (400, 408, 431, 404, 502, 504 …, each with a body that
 * names the reason code, as the access log does), `respond` routes and `redirect` routes, with the
 * templates {host} (the request's host, lower case, without port), {path} (with query) and {client}
 * (the client's address). Values in templates come from a request head the parser validated (no CR,
 * LF or other CTL can be in them), so a Location built from them cannot split the response. Pure.
 * @module
 */
import type { HttpListenerConfig, RespondConfig } from "../config/types.ts";

const STATUS_TEXT: Record<number, string> = {
  100: "Continue", 200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently", 302: "Found",
  303: "See Other", 307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
  404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 410: "Gone", 413: "Content Too Large", 429: "Too Many Requests",
  431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
  503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
};

const encoder = new TextEncoder();

/** What a template may name. */
export interface TemplateValues {
  readonly host: string;
  readonly path: string;
  readonly client: string;
}

/** `{host}`, `{path}` and `{client}` replaced; any other brace text is left as written. */
export function renderTemplate(template: string, v: TemplateValues): string {
  if (!template.includes("{")) return template;
  return template.replace(/\{(host|path|client)\}/g, (_, name: keyof TemplateValues) => v[name]);
}

/**
 * A whole response: status line, fields, Content-Length, Connection: close when `close`, body
 * (left out for a HEAD request, RFC 9110 §9.3.2, though Content-Length still says its size).
 */
export function buildResponse(status: number, fields: readonly (readonly [string, string])[], body: string, close: boolean, headRequest = false): Uint8Array {
  const bytes = encoder.encode(body);
  let head = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Status"}\r\n`;
  for (const [name, value] of fields) head += `${name}: ${value}\r\n`;
  head += `content-length: ${bytes.length}\r\n`;
  if (close) head += "connection: close\r\n";
  head += "\r\n";
  const h = encoder.encode(head);
  if (headRequest || bytes.length === 0) return h;
  const out = new Uint8Array(h.length + bytes.length);
  out.set(h);
  out.set(bytes, h.length);
  return out;
}

const PLAIN: readonly (readonly [string, string])[] = [["content-type", "text/plain; charset=utf-8"]];

/** The proxy's own error answer: the body is the reason code, the same word the access log has. */
export function errorResponse(status: number, reason: string, close: boolean, headRequest = false): Uint8Array {
  return buildResponse(status, PLAIN, `${status} ${STATUS_TEXT[status] ?? ""}: ${reason}\n`, close, headRequest);
}

/** A `respond` route's answer. */
export function respondResponse(r: RespondConfig, v: TemplateValues, close: boolean, headRequest: boolean): Uint8Array {
  const fields: (readonly [string, string])[] = [["content-type", r.contentType]];
  if (r.headers) for (const [name, value] of r.headers) if (name.toLowerCase() !== "content-type") fields.push([name, renderTemplate(value, v)]);
  return buildResponse(r.status, fields, renderTemplate(r.body, v), close, headRequest);
}

/** A `redirect` route's answer. */
export function redirectResponse(status: number, location: string, v: TemplateValues, close: boolean, headRequest: boolean): Uint8Array {
  const to = renderTemplate(location, v);
  return buildResponse(status, [["location", to], ["content-type", "text/plain; charset=utf-8"]], `${status} ${STATUS_TEXT[status] ?? ""}: ${to}\n`, close, headRequest);
}

/** The answer to a request no route takes: the listener's `http.notFound`, else 404 naming `no_route`. */
export function notFoundResponse(config: HttpListenerConfig, v: TemplateValues, close: boolean, headRequest: boolean): Uint8Array {
  return config.notFound ? respondResponse(config.notFound, v, close, headRequest) : errorResponse(404, "no_route", close, headRequest);
}
