/**
 * The short block printed at start (and by `--check`): version, listeners, pools and their backends,
 * the cache, the admin URL, where the logs go. It goes to stderr, whatever the log level (short of
 * `silent`), so that `--log-level warn` does not look like a hang and JSON logs on stdout stay JSON.
 */
import type { Config } from './config/schema.js';
import { formatAddress, formatSize } from './config/units.js';

export interface BannerInput {
  readonly version: string;
  readonly config: Config;
  /** The config file, if any. */
  readonly source?: string | undefined;
  /** Bound addresses (`host:port`) by listener; absent for `--check`, where the configured ones are shown. */
  readonly addresses?: { reverse?: string; reverseTls?: string; forward?: string; admin?: string };
  readonly pid?: number;
  /** With --workers N. */
  readonly workers?: number;
}

const MAX_BACKENDS_SHOWN = 4;

export function startupBanner(input: BannerInput): string[] {
  const { config } = input;
  const bound = input.addresses;
  const shown = (name: keyof NonNullable<BannerInput['addresses']>, configured: { host: string; port: number } | undefined) =>
    bound?.[name] ?? (configured ? formatAddress(configured) : undefined);
  const head = [`portico ${input.version}`];
  if (input.pid !== undefined) head.push(`pid ${input.pid}`);
  if (input.workers !== undefined && input.workers > 1) head.push(`${input.workers} workers`);
  head.push(input.source ? `config ${input.source}` : 'no config file (flags only)');
  const lines = [head.join(' · ')];

  const reverse = config.reverse;
  if (reverse) {
    const routes = reverse.routes.map((r) => `${r.host ?? ''}${r.path} → ${r.pool}`);
    const routeText = routes.length <= 3 ? routes.join(', ') : `${routes.slice(0, 3).join(', ')}, … (${routes.length} routes)`;
    const plain = shown('reverse', reverse.listen);
    const tls = shown('reverseTls', reverse.tls_listen);
    if (plain) lines.push(`  reverse  http://${plain}  ${reverse.h2c ? '(http/1.1, h2c)  ' : ''}${routeText}`);
    if (tls) lines.push(`  reverse  https://${tls}  ${reverse.http2.enabled ? '(h2, http/1.1)  ' : ''}${plain ? '(same routes)' : routeText}`);
  }
  const forward = config.forward;
  if (forward) {
    const at = shown('forward', forward.listen)!;
    const rules = forward.rules.length > 0 ? `, ${forward.rules.length} rule${forward.rules.length === 1 ? '' : 's'}` : '';
    lines.push(`  forward  http://${at}  (curl -x http://${at}; PAC at http://${at}/proxy.pac${rules})`);
  }
  for (const [name, pool] of Object.entries(config.pools)) {
    const urls = pool.servers.map((s) => s.url + (s.backup ? ' (backup)' : ''));
    const list = urls.length <= MAX_BACKENDS_SHOWN ? urls.join(', ') : `${urls.slice(0, MAX_BACKENDS_SHOWN).join(', ')}, … (${urls.length} servers)`;
    lines.push(`  pool ${name}  ${pool.balance}: ${list}${pool.health ? ` · health GET ${pool.health.path}` : ''}`);
  }
  const cache = config.cache;
  lines.push(
    cache.enabled
      ? `  cache    ${formatSize(cache.max_size)} ${cache.store === 'disk' ? `on disk in ${cache.dir}` : 'in memory'}`
      : '  cache    off',
  );
  if (config.admin) {
    const at = shown('admin', config.admin.listen)!;
    lines.push(`  admin    http://${at}/  (dashboard, /api, /metrics${config.admin.token ? '; token required for changes' : ''})`);
  }
  const access = config.log.access;
  const where = access.file ? `${access.file} (${access.format})` : access.format === 'combined' ? 'stdout (combined)' : 'stdout';
  lines.push(`  logs     level ${config.log.level}; one line per request → ${where}`);
  return lines;
}
