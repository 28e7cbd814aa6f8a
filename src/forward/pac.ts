/**
 * The proxy auto-config file served at `/proxy.pac` and `/wpad.dat`: everything goes to this proxy,
 * except the `forward.pac.bypass` hosts, which go DIRECT. Bypass entries:
 *   `intranet.example`   that host;
 *   `*.corp.example`     a shell pattern (shExpMatch);
 *   `.corp.example`      the domain and its subdomains;
 *   `10.0.0.0/8`         an IPv4 range, for hosts written as addresses (no DNS lookup in the browser);
 *   `<local>`            plain host names without a dot.
 */
import { isIP } from 'node:net';

export const PAC_CONTENT_TYPE = 'application/x-ns-proxy-autoconfig';

/** `proxyAddress` is `host:port` as clients reach this proxy. */
export function pacScript(proxyAddress: string, bypass: readonly string[]): string {
  const tests: string[] = [];
  for (const raw of bypass) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '<local>') {
      tests.push('isPlainHostName(host)');
    } else if (entry.includes('/')) {
      const [addr = '', bitsText = ''] = entry.split('/');
      const bits = Number(bitsText);
      if (isIP(addr) === 4 && Number.isInteger(bits) && bits >= 0 && bits <= 32) {
        tests.push(`(/^\\d+\\.\\d+\\.\\d+\\.\\d+$/.test(host) && isInNet(host, ${JSON.stringify(addr)}, ${JSON.stringify(ipv4Mask(bits))}))`);
      }
    } else if (entry.includes('*') || entry.includes('?')) {
      tests.push(`shExpMatch(host, ${JSON.stringify(entry)})`);
    } else if (entry.startsWith('.')) {
      tests.push(`(host == ${JSON.stringify(entry.slice(1))} || dnsDomainIs(host, ${JSON.stringify(entry)}))`);
    } else {
      tests.push(`host == ${JSON.stringify(entry)}`);
    }
  }
  const proxy = JSON.stringify(`PROXY ${proxyAddress}`);
  const direct = tests.length === 0 ? '' : `  if (${tests.join(' ||\n      ')}) return "DIRECT";\n`;
  return `// Proxy auto-config for Portico at ${proxyAddress}\nfunction FindProxyForURL(url, host) {\n  host = host.toLowerCase();\n${direct}  return ${proxy};\n}\n`;
}

function ipv4Mask(bits: number): string {
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return [24, 16, 8, 0].map((shift) => (mask >>> shift) & 0xff).join('.');
}

const HOST_HEADER = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * `host:port` of this proxy as the client reached it: the Host header it used (port added when the
 * header has none), or the listening socket's address when the header is absent or odd.
 */
export function proxyAddressFor(hostHeader: string | undefined, localAddress: string | undefined, localPort: number | undefined): string {
  const port = localPort ?? 3128;
  if (hostHeader !== undefined && HOST_HEADER.test(hostHeader)) {
    const hasPort = hostHeader.startsWith('[') ? hostHeader.includes(']:') : hostHeader.includes(':');
    return hasPort ? hostHeader : `${hostHeader}:${port}`;
  }
  let addr = localAddress ?? '127.0.0.1';
  if (addr.startsWith('::ffff:') && isIP(addr.slice(7)) === 4) addr = addr.slice(7);
  return isIP(addr) === 6 ? `[${addr}]:${port}` : `${addr}:${port}`;
}
