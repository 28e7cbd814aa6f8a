/**
 * Active health checks: `GET path` on every backend, every `interval`, each check failing after
 * `timeout`. Results go to a callback (the Pool feeds them to the backend's health with rise/fall).
 * Timers are unref()ed; stop() clears them and aborts checks in flight.
 */
import http from 'node:http';
import https from 'node:https';
import type { Backend } from './backend.js';
import type { HealthSpec } from './types.js';

export type HealthCheckListener = (backend: Backend, ok: boolean, reason: string) => void;

const USER_AGENT = 'portico-health-check';

export class ActiveHealthChecker {
  private readonly backends: readonly Backend[];
  private readonly spec: HealthSpec;
  private readonly onResult: HealthCheckListener;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly requests = new Set<http.ClientRequest>();
  private httpAgent: http.Agent | undefined;
  private httpsAgent: https.Agent | undefined;
  private running = false;

  constructor(backends: readonly Backend[], spec: HealthSpec, onResult: HealthCheckListener) {
    this.backends = backends;
    this.spec = spec;
    this.onResult = onResult;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Checks every backend now, then every interval. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.httpAgent = new http.Agent({ keepAlive: false });
    // A health check asks "is it alive?", not "is its certificate valid?" (as in nginx).
    this.httpsAgent = new https.Agent({ keepAlive: false, rejectUnauthorized: false });
    for (const backend of this.backends) this.check(backend);
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const req of this.requests) req.destroy();
    this.requests.clear();
    this.httpAgent?.destroy();
    this.httpsAgent?.destroy();
    this.httpAgent = undefined;
    this.httpsAgent = undefined;
  }

  private schedule(backend: Backend): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.check(backend);
    }, this.spec.intervalMs);
    timer.unref();
    this.timers.add(timer);
  }

  private check(backend: Backend): void {
    if (!this.running) return;
    const url = backend.url;
    const secure = url.protocol === 'https:';
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    let settled = false;
    let req: http.ClientRequest;

    const finish = (ok: boolean, reason: string): void => {
      if (settled) return;
      settled = true;
      if (!this.running) return;
      this.onResult(backend, ok, reason);
      this.schedule(backend);
    };

    const options: https.RequestOptions = {
      hostname,
      port: url.port || (secure ? 443 : 80),
      path: this.spec.path,
      method: 'GET',
      agent: secure ? this.httpsAgent : this.httpAgent,
      headers: { host: this.spec.host ?? url.host, 'user-agent': USER_AGENT, accept: '*/*' },
    };
    try {
      req = (secure ? https : http).request(options);
    } catch (err) {
      finish(false, (err as Error).message);
      return;
    }
    this.requests.add(req);

    // Bounds the whole exchange: no answer in time is a failure; a body still streaming is cut off.
    const timer = setTimeout(() => {
      finish(false, `timed out after ${this.spec.timeoutMs}ms`);
      req.destroy();
    }, this.spec.timeoutMs);
    timer.unref();

    req.on('response', (res) => {
      res.on('error', ignore);
      const status = res.statusCode ?? 0;
      const ok = this.isExpectedStatus(status);
      finish(ok, ok ? `status ${status}` : `unexpected status ${status}`);
      res.resume();
    });
    req.on('error', (err: NodeJS.ErrnoException) => finish(false, err.code ?? err.message));
    req.on('close', () => {
      clearTimeout(timer);
      this.requests.delete(req);
      finish(false, 'connection closed without a response');
    });
    req.end();
  }

  private isExpectedStatus(status: number): boolean {
    const expected = this.spec.expectStatus;
    return expected.length === 0 ? status >= 200 && status < 400 : expected.includes(status);
  }
}

function ignore(): void {}
