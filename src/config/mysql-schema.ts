/**
 * The mysql keys of the schema: route `match.connectionAttributes`, an extension to SPEC.md (which
 * names no key for it): `{ "program_name": "mysql", "_client_name": ["libmariadb", "PyMySQL"] }`,
 * attribute name → accepted value or values, compared exactly; the route matches when every named
 * attribute was sent with one of them. The name is the protocol's own ("connection attributes",
 * CLIENT_CONNECT_ATTRS) and reads the same for another protocol's client-declared parameters, so it
 * can grow without a rename.
 * https://dev.mysql.com/doc/refman/8.0/en/performance-schema-connection-attribute-tables.html
 * @module
 */
import type { JsonPath } from "./jsonc.ts";
import type { ConfigReader, Obj } from "./reader.ts";
import type { Protocol, RouteMatch } from "./types.ts";

export const MYSQL_MATCH_KEYS = ["connectionAttributes"];

/** Attribute names and values are lenenc strings in the protocol; these bounds keep a config sane. */
const MAX_ATTRIBUTE_BYTES = 1024;

export function readMysqlMatch(r: ConfigReader, o: Obj, path: JsonPath, protocol: Protocol): Pick<RouteMatch, "connectionAttributes"> {
  if (o.connectionAttributes === undefined) return {};
  const at = [...path, "connectionAttributes"];
  if (protocol !== "mysql") {
    r.fail(at, `match.connectionAttributes needs protocol "mysql" (this listener is "${protocol}")`);
    return {};
  }
  const value = o.connectionAttributes;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    r.fail(at, 'connectionAttributes is an object of attribute name → value or list of values, e.g. { "program_name": "mysql" }');
    return {};
  }
  const out: Record<string, readonly string[]> = {};
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) r.fail(at, "connectionAttributes is empty: leave it out to match any client");
  for (const [name, v] of entries) {
    if (name === "" || name.length > MAX_ATTRIBUTE_BYTES) r.fail([...at, name], "an attribute name is 1 to 1024 characters");
    if (typeof v !== "string" && !Array.isArray(v)) {
      r.fail([...at, name], `an attribute's accepted value is a string or a list of strings, got ${JSON.stringify(v)}`);
      continue;
    }
    const values = r.stringList(value as Obj, name, at, (s) => (s.length <= MAX_ATTRIBUTE_BYTES ? null : "an attribute value is at most 1024 characters"));
    if (Array.isArray(v) && v.length === 0) r.fail([...at, name], "an empty list would match no client");
    out[name] = values;
  }
  return { connectionAttributes: out };
}
