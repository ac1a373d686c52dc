/**
 * The limits table in shared memory (native/src/limits.zig): one per service, made by the supervisor,
 * mapped by every worker, so limits hold across workers. See README "Global limits".
 * @module
 */
import { limitsOpen, limitsRelease, limitsTake } from "../native/limits.ts";
import type { LimitKey, LimitTable, Verdict } from "./limit-table.ts";

const VERDICTS: readonly Verdict[] = ["admitted", "rateLimited", "concurrencyLimited", "busy", "tableFull"];

export class SharedLimitTable implements LimitTable {
  readonly scope = "shared";

  take(key: LimitKey, rate: number, burst: number, maxOpen: number, count: boolean): Verdict {
    return VERDICTS[limitsTake(key.h1, key.h2, rate, burst, maxOpen, count)] ?? "tableFull";
  }

  release(key: LimitKey): void {
    limitsRelease(key.h1, key.h2);
  }

  open(key: LimitKey): number {
    return limitsOpen(key.h1, key.h2);
  }
}
