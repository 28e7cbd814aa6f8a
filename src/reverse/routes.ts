/**
 * The route table: host (exact or `*.suffix`) and longest path prefix → a route.
 * Built once per config; matching does no allocation.
 */

export interface RouteSpec<T> {
  readonly host: string | undefined;
  readonly path: string;
  readonly target: T;
}

interface Group<T> {
  /** Routes sorted by path prefix length, longest first. */
  readonly routes: readonly RouteSpec<T>[];
}

export class RouteTable<T> {
  private readonly exact = new Map<string, Group<T>>();
  /** `*.example.com` stored as `.example.com`, longest suffix first. */
  private readonly wildcard: Array<{ suffix: string; group: Group<T> }> = [];
  private readonly any: Group<T>;

  constructor(routes: readonly RouteSpec<T>[]) {
    const exact = new Map<string, RouteSpec<T>[]>();
    const wild = new Map<string, RouteSpec<T>[]>();
    const any: RouteSpec<T>[] = [];
    for (const route of routes) {
      const host = route.host?.toLowerCase().replace(/:\d+$/, '');
      if (host === undefined) any.push(route);
      else if (host.startsWith('*.')) push(wild, host.slice(1), route);
      else push(exact, host, route);
    }
    for (const [host, list] of exact) this.exact.set(host, group(list));
    for (const [suffix, list] of wild) this.wildcard.push({ suffix, group: group(list) });
    this.wildcard.sort((a, b) => b.suffix.length - a.suffix.length);
    this.any = group(any);
  }

  /** `host` is the Host header (any case, may carry a port); `path` the request target's path. */
  match(host: string | undefined, path: string): RouteSpec<T> | undefined {
    if (host) {
      const name = hostName(host);
      const exact = this.exact.get(name);
      const found = exact && matchPath(exact, path);
      if (found) return found;
      for (const { suffix, group: g } of this.wildcard) {
        if (name.endsWith(suffix)) {
          const hit = matchPath(g, path);
          if (hit) return hit;
        }
      }
    }
    return matchPath(this.any, path);
  }
}

function push<T>(map: Map<string, RouteSpec<T>[]>, key: string, route: RouteSpec<T>): void {
  const list = map.get(key);
  if (list) list.push(route);
  else map.set(key, [route]);
}

function group<T>(routes: RouteSpec<T>[]): Group<T> {
  // Stable sort keeps file order among equal prefixes: the first one written wins.
  return { routes: [...routes].sort((a, b) => b.path.length - a.path.length) };
}

function matchPath<T>(g: Group<T>, path: string): RouteSpec<T> | undefined {
  for (const route of g.routes) if (path.startsWith(route.path)) return route;
  return undefined;
}

/** Lower-case host name without port; handles `[v6]:port`. */
export function hostName(host: string): string {
  let name = host;
  if (name.startsWith('[')) {
    const end = name.indexOf(']');
    name = end > 0 ? name.slice(0, end + 1) : name;
  } else {
    const colon = name.indexOf(':');
    if (colon >= 0) name = name.slice(0, colon);
  }
  return name.toLowerCase();
}
