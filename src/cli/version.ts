/** `switchyard version`: what this binary is and what it can use on this host. */
import { nativeStatus, spliceUnusable } from "../native/index.ts";
import { sockmapUnusable } from "../native/sockmap.ts";
import { uringUnusable } from "../native/uring.ts";

declare const SWITCHYARD_VERSION: string;
declare const SWITCHYARD_COMMIT: string;

export const VERSION = typeof SWITCHYARD_VERSION === "string" ? SWITCHYARD_VERSION : "dev";
const COMMIT = typeof SWITCHYARD_COMMIT === "string" ? SWITCHYARD_COMMIT : "unknown";

export function versionText(): string {
  const native = nativeStatus();
  const spliceWhyNot = spliceUnusable();
  const sockmapWhyNot = sockmapUnusable();
  const uringWhyNot = uringUnusable();
  return [
    `switchyard ${VERSION} (${COMMIT})`,
    `bun ${Bun.version} (${Bun.revision.slice(0, 9)}), ${process.platform}/${process.arch}`,
    native.loaded ? `native library: loaded (ABI ${native.abi})` : `native library: not loaded (${native.reason})`,
    "relay engines:",
    "  userspace: usable",
    spliceWhyNot === null ? "  splice: usable" : `  splice: not usable (${spliceWhyNot})`,
    sockmapWhyNot === null ? "  sockmap: usable" : `  sockmap: not usable (${sockmapWhyNot})`,
    uringWhyNot === null ? "  uring: usable" : `  uring: not usable (${uringWhyNot})`,
  ].join("\n");
}
