/** `switchyard validate`: the one-line summary of a configuration that loads. */
import type { Config } from "../config/types.ts";

export function summary(config: Config): string {
  const routes = config.listeners.reduce((n, l) => n + l.routes.length, 0);
  const addresses = config.listeners.reduce((n, l) => n + l.listen.length, 0);
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  return `${config.source}: OK (${plural(config.listeners.length, "listener")}, ${plural(addresses, "address")}, ${plural(routes, "route")})`;
}
