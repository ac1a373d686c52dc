/**
 * Host and path patterns of a route's `match` (SPEC.md "Protocols beyond TCP and TLS"), compiled
 * once per route into a test that runs per request. Pure.
 *
 * Host patterns, compared label by label, case-insensitively; a port and a trailing dot on the
 * request's host are ignored (see {@link normaliseHost}):
 * - a label without `*` matches that label exactly;
 * - a label with `*` (`cdn-*`) matches one label, `*` standing for any run of characters within it;
 * - a leading `*.` matches exactly one label (the `*` label rule, with nothing around the `*`);
 * - a `**` label matches one or more labels.
 * Path patterns: exact, or ending in `/*` for that prefix and everything below it (`/v1/*` matches
 * `/v1`, `/v1/` and `/v1/a/b`, not `/v10`). The query is not part of the path matched.
 * @module
 */

/** A compiled pattern: true when the (normalised) value matches. */
export type ValueTest = (value: string) => boolean;

/**
 * The host as routes compare it: lower case, without a port and without a trailing dot. An IPv6
 * literal keeps its brackets. `raw` is a Host value or an absolute-form target's authority.
 */
export function normaliseHost(raw: string): string {
  let end = raw.length;
  if (raw.charCodeAt(0) === 0x5b /* [ */) {
    const close = raw.indexOf("]");
    if (close > 0) end = close + 1;
  } else {
    const colon = raw.indexOf(":");
    if (colon >= 0) end = colon;
  }
  if (end > 0 && raw.charCodeAt(end - 1) === 0x2e /* . */) end--;
  const host = end === raw.length ? raw : raw.slice(0, end);
  return hasUpper(host) ? host.toLowerCase() : host;
}

function hasUpper(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return true;
  }
  return false;
}

/** The request path without its query: what path patterns are matched against. */
export function pathOnly(target: string): string {
  const q = target.indexOf("?");
  return q < 0 ? target : target.slice(0, q);
}

/** Why a host pattern cannot be used, or null (for the schema). */
export function hostPatternProblem(pattern: string): string | null {
  if (pattern === "") return "empty host pattern";
  const labels = normaliseHost(pattern).split(".");
  for (const label of labels) {
    if (label === "") return `empty label in host pattern "${pattern}"`;
    if (label.includes("**") && label !== "**") return `"**" must be a whole label in "${pattern}"`;
    if (!/^[a-z0-9_*\-[\]:]+$/.test(label)) return `not a host pattern: "${pattern}"`;
  }
  return null;
}

/** Why a path pattern cannot be used, or null (for the schema). */
export function pathPatternProblem(pattern: string): string | null {
  if (!pattern.startsWith("/")) return `a path pattern starts with "/": "${pattern}"`;
  const star = pattern.indexOf("*");
  if (star >= 0 && (star !== pattern.length - 1 || !pattern.endsWith("/*"))) return `only a trailing "/*" wildcard is supported: "${pattern}"`;
  return null;
}

/** One test for a list of host patterns (any may match). Exact names are looked up in a set. */
export function compileHostPatterns(patterns: readonly string[]): ValueTest {
  const exact = new Set<string>();
  const wild: (readonly Label[])[] = [];
  for (const p of patterns) {
    const n = normaliseHost(p);
    if (!n.includes("*")) exact.add(n);
    else wild.push(n.split(".").map(compileLabel));
  }
  if (wild.length === 0) return (host) => exact.has(host);
  return function hostMatches(host) {
    if (exact.has(host)) return true;
    const labels = host.split(".");
    for (const w of wild) if (matchLabels(w, 0, labels, 0)) return true;
    return false;
  };
}

/** A pattern label: `**` (one or more labels), or literal parts with `*` between them. */
type Label = { readonly kind: "many" } | { readonly kind: "one"; readonly parts: readonly string[] };

const MANY: Label = { kind: "many" };

function compileLabel(label: string): Label {
  return label === "**" ? MANY : { kind: "one", parts: label.split("*") };
}

/** Whether pattern labels from `p` match host labels from `h` (backtracking only over `**`). */
function matchLabels(pattern: readonly Label[], p: number, labels: readonly string[], h: number): boolean {
  for (; p < pattern.length; p++, h++) {
    const l = pattern[p]!;
    if (l.kind === "many") {
      // One or more labels: try each split, shortest first.
      for (let take = 1; h + take <= labels.length; take++) if (matchLabels(pattern, p + 1, labels, h + take)) return true;
      return false;
    }
    if (h >= labels.length || !matchParts(l.parts, labels[h]!)) return false;
  }
  return h === labels.length;
}

/** `parts` joined by `*` matches `label`: the first part is a prefix, the last a suffix, the rest in order. */
function matchParts(parts: readonly string[], label: string): boolean {
  if (parts.length === 1) return parts[0] === label;
  if (label.length === 0) return false; // "a..b" has no label for a "*" to stand for
  const first = parts[0]!, last = parts[parts.length - 1]!;
  if (label.length < first.length + last.length || !label.startsWith(first) || !label.endsWith(last)) return false;
  let at = first.length;
  const stop = label.length - last.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const found = label.indexOf(parts[i]!, at);
    if (found < 0 || found + parts[i]!.length > stop) return false;
    at = found + parts[i]!.length;
  }
  return true;
}

/** One test for a list of path patterns (any may match); the value is the path without its query. */
export function compilePathPatterns(patterns: readonly string[]): ValueTest {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const p of patterns) {
    if (p.endsWith("/*")) prefixes.push(p.slice(0, -2));
    else exact.add(p);
  }
  return function pathMatches(path) {
    if (exact.has(path)) return true;
    for (const prefix of prefixes) {
      // "/v1/*": "/v1" itself, or "/v1/" and below; "/*": every path.
      if (path.startsWith(prefix) && (path.length === prefix.length || path.charCodeAt(prefix.length) === 0x2f)) return true;
    }
    return false;
  };
}
