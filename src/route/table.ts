/**
 * Route-table semantics, written once: routes are tried in the order written; a route matches when
 * every field of its `match` matches (AND), and a list field matches when any entry does (OR). A route
 * without `match` is the default, used when no other route matches, wherever it stands in the list.
 * Pure: facts in, route out.
 * @module
 */
import { CidrSet, parseIp, type IpAddress } from "../net/ip.ts";
import type { RouteConfig } from "../config/types.ts";

/** What is known about a connection when it is routed. Later protocols add sni, database, host… */
export interface RouteFacts {
  /** The client's address as text; parsed only if a route matches on it. */
  readonly clientIp: string;
}

export class RouteTable<R extends { readonly config: RouteConfig }> {
  readonly #matchers: { route: R; clients: CidrSet | null }[] = [];
  readonly #fallback: R | null = null;

  constructor(routes: readonly R[]) {
    for (const route of routes) {
      const m = route.config.match;
      if (m === null) this.#fallback = route;
      else this.#matchers.push({ route, clients: m.clientCidr.length ? new CidrSet(m.clientCidr) : null });
    }
  }

  get isEmpty(): boolean {
    return this.#matchers.length === 0 && this.#fallback === null;
  }

  /** The route for these facts, or null when none matches and there is no default route. */
  match(facts: RouteFacts): R | null {
    let ip: IpAddress | null | undefined; // parsed on first need: most tables never look at it
    for (const { route, clients } of this.#matchers) {
      if (clients) {
        ip ??= parseIp(facts.clientIp);
        if (!ip || !clients.contains(ip)) continue;
      }
      return route;
    }
    return this.#fallback;
  }
}
