/** Starts a real Portico in the test process, listening on 127.0.0.1 ports chosen by the OS. */
import { validateConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { silentLogger, type Logger } from '../../src/core/log.js';
import { Portico } from '../../src/server.js';

export interface RunningPortico {
  readonly portico: Portico;
  /** http://127.0.0.1:PORT of the reverse listener, if configured. */
  readonly reverseUrl: string;
  readonly reverseTlsUrl: string | undefined;
  readonly forwardUrl: string | undefined;
  readonly adminUrl: string | undefined;
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly log?: Logger;
  /** Portico's clock (see TestClock in clock.ts); the real one by default. */
  readonly now?: () => number;
}

/** Starts Portico with `config`; the second argument is a logger, or options. */
export async function startPortico(config: ConfigInput, options: Logger | StartOptions = {}): Promise<RunningPortico> {
  const { log = silentLogger, now } = isLogger(options) ? { log: options, now: undefined } : options;
  const portico = await Portico.start(validateConfig(config), { log, now });
  const a = portico.addresses();
  const url = (addr: string | undefined, scheme = 'http') => (addr ? `${scheme}://${addr}` : undefined);
  return {
    portico,
    reverseUrl: url(a.reverse) ?? '',
    reverseTlsUrl: url(a.reverseTls, 'https'),
    forwardUrl: url(a.forward),
    adminUrl: url(a.admin),
    stop: () => portico.close(100),
  };
}

/** The smallest reverse-proxy config: one route to one pool of the given backends. */
export function reverseConfig(backends: readonly string[], pool: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): ConfigInput {
  return {
    reverse: { listen: '127.0.0.1:0', routes: [{ path: '/', pool: 'p' }] },
    pools: { p: { servers: backends.map((url) => ({ url })), ...pool } },
    ...extra,
  } as ConfigInput;
}

function isLogger(x: Logger | StartOptions): x is Logger {
  return typeof (x as Logger).info === 'function';
}
