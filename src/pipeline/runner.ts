/**
 * The phase runner: every entry point of both doors — forward HTTP, CONNECT, reverse HTTP, Upgrade —
 * runs the same request phases, in this order, here and nowhere else:
 *
 *   1. client     who may use this door at all (forward.clients), before anything costs a token
 *   2. admission  well-formed, within the size limits, within the door's rate limit
 *   3. resolve    the door's own checks and the destination: the forward door's loop check, proxy
 *                 authentication, target, CONNECT ports, own-address and SSRF checks; the reverse door's
 *                 route. It may also answer by itself (the PAC file).
 *   4. rules      the door's access rules (forward.rules / reverse.rules): first match wins
 *   5. limit      the destination's own rate limit (a reverse route's rate_limit)
 *   6. proxy      what proxying means for this entry point (an HTTP exchange through the cache, a
 *                 tunnel, an upgraded socket) — supplied by the entry point
 *
 * A refusal at any phase is answered with a page (Proxy-Status included) by the session, whichever
 * downstream it has, and every request ends in exactly one access-log line (Session.finish).
 * `dryRun()` runs phases 1–4 without side effects for the admin API's explain, so it cannot disagree
 * with what a real request meets.
 */
import { asProxyError, ProxyError } from '../core/errors.js';
import type { RateLimiter } from '../policy/rate-limiter.js';
import type { RuleRequest, RuleSet, RuleVerdict } from '../policy/rules.js';
import { rateLimited, type RequestGuard } from './admission.js';
import { blockedPage, type Page } from './pages.js';
import type { Session } from './session.js';

/** The door's answer to "where does this go?": a destination, a refusal, or a page it answers itself. */
export type Resolution<D> = { readonly dest: D } | ProxyError | Page;

/** What a door supplies to the phases; everything else is shared. */
export interface Door<D> {
  /** The door's access rules. */
  readonly rules: RuleSet;
  /** Limits and the door's rate limit. */
  readonly admission: RequestGuard;
  /** Phase 1: null when the client may use this door. */
  admitClient(session: Session): ProxyError | null;
  /**
   * Phase 3: the door's own checks and the destination. A promise when it must wait (proxy
   * authentication with a slow hash). With `dryRun` it has no side effects (explain).
   */
  resolve(session: Session, dryRun: boolean): Resolution<D> | Promise<Resolution<D>>;
  /** Phase 4: what the rules see of this request. */
  ruleRequest(session: Session, dest: D): RuleRequest;
  /** What the block page names as the target (`host:port` or the URL). */
  blockedTarget(session: Session, dest: D): string;
  /** Phase 5: the destination's own rate limit, if it has one. */
  limitOf(dest: D): { readonly limiter: RateLimiter; readonly label: string } | null;
}

/** Phase 6, for one entry point: what proxying means once every check has passed. */
export type ProxyStep<D, S extends Session> = (session: S, dest: D) => void;

/** Runs the phases for `session` and hands it to `proxy` if everything lets it through. */
export function runPhases<D, S extends Session>(session: S, door: Door<D>, proxy: ProxyStep<D, S>): void {
  const refused = door.admitClient(session) ?? door.admission.admit(session.req, session.clientAddress);
  if (refused !== null) {
    session.refuse(refused);
    return;
  }
  let resolution: Resolution<D> | Promise<Resolution<D>>;
  try {
    resolution = door.resolve(session, false);
  } catch (err) {
    session.refuse(asProxyError(err));
    return;
  }
  if (resolution instanceof Promise) {
    resolution.then(
      (r) => afterResolve(session, door, r, proxy),
      (err: unknown) => session.refuse(asProxyError(err)),
    );
  } else {
    afterResolve(session, door, resolution, proxy);
  }
}

function afterResolve<D, S extends Session>(session: S, door: Door<D>, resolution: Resolution<D>, proxy: ProxyStep<D, S>): void {
  if (resolution instanceof ProxyError) {
    session.refuse(resolution);
    return;
  }
  if (!('dest' in resolution)) {
    session.cache = 'local';
    session.respond(resolution);
    return;
  }
  const dest = resolution.dest;
  const verdict = evaluateRules(session, door, dest);
  if (verdict !== null && verdict.action === 'deny') {
    const target = door.blockedTarget(session, dest);
    session.reportBlocked(target, verdict.label);
    session.error = 'forbidden';
    session.respond(blockedPage(target, verdict.label, session.req.headers.accept));
    return;
  }
  const limit = door.limitOf(dest);
  const overRate = limit === null ? null : rateLimited(limit.limiter, session.clientAddress, limit.label);
  if (overRate !== null) {
    session.refuse(overRate);
    return;
  }
  try {
    proxy(session, dest);
  } catch (err) {
    if (session.answered) session.abort();
    else session.refuse(asProxyError(err));
  }
}

function evaluateRules<D>(session: Session, door: Door<D>, dest: D): RuleVerdict | null {
  return door.rules.size === 0 ? null : door.rules.evaluate(door.ruleRequest(session, dest));
}

/** What the phases decide for a request, without doing anything (the admin API's explain). */
export interface DryRunOutcome<D> {
  /** The phase that decided: a refusal's phase, or `proxy` when the request would be proxied. */
  readonly phase: 'client' | 'admission' | 'resolve' | 'rules' | 'proxy';
  readonly status: number;
  readonly error: ProxyError | null;
  readonly verdict: RuleVerdict | null;
  readonly dest: D | null;
}

/**
 * Phases 1–4 without side effects: the rate limits are not charged (and not checked), proxy
 * authentication is taken as given (the session's `user`; none is a request without credentials),
 * nothing is sent.
 */
export async function dryRun<D>(session: Session, door: Door<D>): Promise<DryRunOutcome<D>> {
  const none = { verdict: null, dest: null };
  const refused = door.admitClient(session);
  if (refused !== null) return { phase: 'client', status: refused.status, error: refused, ...none };
  const invalid = door.admission.check(session.req);
  if (invalid !== null) return { phase: 'admission', status: invalid.status, error: invalid, ...none };
  const resolution = await door.resolve(session, true);
  if (resolution instanceof ProxyError) return { phase: 'resolve', status: resolution.status, error: resolution, ...none };
  if (!('dest' in resolution)) return { phase: 'resolve', status: resolution.status, error: null, ...none };
  const verdict = evaluateRules(session, door, resolution.dest);
  if (verdict !== null && verdict.action === 'deny') return { phase: 'rules', status: 403, error: null, verdict, dest: resolution.dest };
  return { phase: 'proxy', status: 0, error: null, verdict, dest: resolution.dest };
}
