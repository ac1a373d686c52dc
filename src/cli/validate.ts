/** `switchyard validate`: the one-line summary of a configuration that loads. */
import type { Config } from "../config/types.ts";

export function summary(config: Config): string {
  const routes = config.listeners.reduce((n, l) => n + l.routes.length, 0);
  const addresses = config.listeners.reduce((n, l) => n + l.listen.length, 0);
  const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  return `${config.source}: OK (${count(config.listeners.length, "listener", "listeners")}, ${count(addresses, "address", "addresses")}, ${count(routes, "route", "routes")})`;
}
