import { describe, expect, it } from 'vitest';
import { PICKERS, createPicker } from '../../src/balance/pickers.js';
import { BALANCE_ALGORITHMS } from '../../src/balance/types.js';
import { label, makeBackends, request, server, servers, setActive } from './helpers.js';

const options = { hashKey: 'uri' };

describe('every picker', () => {
  it('has a picker for every balance algorithm', () => {
    expect(Object.keys(PICKERS).sort()).toEqual([...BALANCE_ALGORITHMS].sort());
  });

  describe.each(BALANCE_ALGORITHMS)('%s', (algorithm) => {
    it('returns null with no backends', () => {
      expect(createPicker(algorithm, [], options).pick(request(), null)).toBeNull();
    });

    it('never picks a down backend', () => {
      const backends = makeBackends(servers(3));
      setActive(backends[1]!, false);
      const picker = createPicker(algorithm, backends, options);
      for (let i = 0; i < 200; i++) {
        const req = request({ url: `/item/${i}`, clientAddress: `10.1.0.${i % 250}` });
        expect(label(picker.pick(req, null))).not.toBe('2');
      }
    });

    it('never picks a drained backend', () => {
      const backends = makeBackends(servers(3));
      backends[0]!.health.setDrained(true, backends[0]!.reporter);
      const picker = createPicker(algorithm, backends, options);
      for (let i = 0; i < 200; i++) {
        expect(label(picker.pick(request({ url: `/x/${i}`, clientAddress: `10.2.0.${i % 250}` }), null))).not.toBe('1');
      }
    });

    it('never picks a backend at max_conns, and picks it again once it has room', () => {
      const backends = makeBackends([server('http://10.0.0.1:3000', { maxConns: 1 }), ...servers(3).slice(1)]);
      const full = backends[0]!;
      full.inflight = 1;
      const picker = createPicker(algorithm, backends, options);
      const seen = new Set<string>();
      for (let i = 0; i < 300; i++) seen.add(label(picker.pick(request({ url: `/y/${i}`, clientAddress: `10.3.0.${i % 250}` }), null)));
      expect(seen.has('1')).toBe(false);
      full.inflight = 0;
      for (let i = 0; i < 300; i++) seen.add(label(picker.pick(request({ url: `/y/${i}`, clientAddress: `10.3.0.${i % 250}` }), null)));
      expect(seen.has('1')).toBe(true);
    });

    it('never picks a backend already tried, and returns null when all were', () => {
      const backends = makeBackends(servers(3));
      const picker = createPicker(algorithm, backends, options);
      const tried = [backends[0]!, backends[2]!];
      for (let i = 0; i < 50; i++) expect(picker.pick(request({ url: `/z/${i}` }), tried)).toBe(backends[1]);
      expect(picker.pick(request(), backends)).toBeNull();
    });

    it('returns null when every backend is down', () => {
      const backends = makeBackends(servers(3));
      for (const b of backends) setActive(b, false);
      expect(createPicker(algorithm, backends, options).pick(request(), null)).toBeNull();
    });
  });
});
