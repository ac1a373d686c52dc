/**
 * The two ways a tls listener collects a ClientHello, and the environment that selects each: peeked
 * (MSG_PEEK, left in the kernel; needs the native library) and read (without the library). Suites
 * whose behaviour must not depend on the way run once per entry (STYLE.md rule 7).
 */
export const SNIFF_PATHS = [
  { name: "peek", env: {} },
  { name: "read", env: { SWITCHYARD_NATIVE: "off" } },
] as const;

export type SniffPath = (typeof SNIFF_PATHS)[number];

/** The proxy's environment for `path`: a bare PATH plus the switch. */
export function envFor(path: SniffPath): Record<string, string> {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", ...path.env };
}
