// Portico dashboard: polls /api/stats about once a second and renders it. Plain JS, no build step.
'use strict';

(function () {
  const POLL_MS = 1000;
  const TOKEN_KEY = 'portico-admin-token';
  const $ = (id) => document.getElementById(id);

  // A token can be handed over in the fragment (#token=…), which never reaches the server's logs.
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) {
    sessionStorage.setItem(TOKEN_KEY, fromHash);
    history.replaceState(null, '', location.pathname + location.search);
  }
  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  let lastOk = 0;
  let latest = null;
  // Why the token box is open: 'read' (the listener wants the token for everything: polls close it
  // once they succeed) or 'change' (a Drain/Enable or a Purge needs it: only a submitted token closes
  // it, and the action is then retried).
  let authFor = null;
  let authLabel = '';
  let pendingAction = null;

  function headers(extra) {
    const h = Object.assign({ accept: 'application/json' }, extra || {});
    if (token) h.authorization = 'Bearer ' + token;
    return h;
  }

  // ---------- formatting ----------
  const nf = new Intl.NumberFormat();
  function num(n) { return n === null || n === undefined ? '–' : nf.format(n); }
  function fixed(n, d) { return n === null || n === undefined ? '–' : n.toFixed(d); }
  function compact(n) {
    if (n < 1000) return String(Math.round(n));
    const units = ['k', 'M', 'G', 'T'];
    let u = -1;
    while (n >= 1000 && u < units.length - 1) { n /= 1000; u++; }
    return (n < 10 ? n.toFixed(1) : Math.round(n)) + units[u];
  }
  function bytes(n) {
    if (n === null || n === undefined) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let u = 0;
    while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
    return (u === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[u];
  }
  function ms(n) {
    if (n === null || n === undefined) return '–';
    if (n >= 1000) return (n / 1000).toFixed(n >= 10000 ? 0 : 2) + ' s';
    return (n < 10 ? n.toFixed(1) : Math.round(n)) + ' ms';
  }
  function pct(r) { return r === null || r === undefined ? '–' : (r * 100).toFixed(r >= 0.995 || r === 0 ? 0 : 1) + '%'; }
  function duration(s) {
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d > 0) return d + 'd ' + h + 'h';
    if (h > 0) return h + 'h ' + m + 'm';
    if (m > 0) return m + 'm ' + (s % 60) + 's';
    return s + 's';
  }
  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    if (attrs) for (const k of Object.keys(attrs)) {
      const v = attrs[k];
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k === 'style') e.style.cssText = v; // CSSOM, allowed by the page's CSP (no inline style attributes)
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    if (children) for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  function setText(id, text) { const e = $(id); if (e.textContent !== text) e.textContent = text; }

  // ---------- polling ----------
  async function poll() {
    try {
      const res = await fetch('/api/stats', { headers: headers(), cache: 'no-store' });
      if (res.status === 401 || res.status === 403) {
        const body = await res.json().catch(() => ({}));
        showAuth('read', body.error || 'not allowed');
      } else if (res.ok) {
        if (authFor === 'read') hideAuth();
        latest = await res.json();
        lastOk = Date.now();
        render(latest);
      }
    } catch (err) {
      // The proxy may be restarting: keep trying.
    }
    updateLive();
    setTimeout(poll, POLL_MS);
  }

  function updateLive() {
    const live = $('live');
    const fresh = Date.now() - lastOk < 3 * POLL_MS;
    const state = lastOk === 0 ? 'connecting' : fresh ? 'live' : 'stale';
    if (live.dataset.state !== state) live.dataset.state = state;
    setText('live-text', state === 'stale' ? 'no answer' : state);
  }

  function showAuth(why, message, label) {
    if (authFor !== 'change') authFor = why;
    if (why === 'change') authLabel = label || 'Drain and Enable need the admin token (admin.token)';
    $('auth').hidden = false;
    setText('auth-label', authFor === 'change' ? authLabel : 'This admin listener needs its token (admin.token)');
    setText('auth-message', message);
    if (authFor === 'change') $('token').focus();
  }
  function hideAuth() {
    authFor = null;
    $('auth').hidden = true;
    setText('auth-message', '');
  }
  $('auth-form').addEventListener('submit', (e) => {
    e.preventDefault();
    token = $('token').value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    $('token').value = '';
    if (cacheNeedsToken) searchCache(false);
    if (authFor === 'change') {
      hideAuth();
      const retry = pendingAction;
      pendingAction = null;
      if (retry) retry();
    }
  });

  // ---------- rendering ----------
  const STATUS_COLORS = { '1xx': 'var(--s1)', '2xx': 'var(--s2)', '3xx': 'var(--s3)', '4xx': 'var(--s4)', '5xx': 'var(--s5)' };
  const PROTOCOL_COLORS = { 'HTTP/1.x': 'var(--s1)', 'HTTP/2': 'var(--s2)' };
  const CACHE_COLORS = { hit: 'var(--s2)', stale: '#84cc16', revalidated: 'var(--s3)', miss: 'var(--s4)', bypass: 'var(--s1)' };

  function render(s) {
    setText('version', 'v' + s.version);
    setText('uptime', duration(s.uptimeSeconds));
    renderListeners(s.listeners);
    const r = s.requests;
    setText('rps', fixed(r.rps, r.rps < 10 ? 1 : 0));
    setText('rps-sub', fixed(r.rps1m, 1) + ' /s over 1 min');
    setText('total', compact(r.total));
    setText('total-sub', 'reverse ' + compact(r.byDoor.reverse.total) + ' · forward ' + compact(r.byDoor.forward.total));
    setText('p99', ms(r.p99Ms));
    setText('p50', 'p50 ' + ms(r.p50Ms) + ' · last minute');
    setText('inflight', num(r.inflight));
    const t = s.tunnels;
    setText('tunnels', (t.connect.open + t.upgrade.open) + ' tunnels open');
    renderCache(s.cache);
    drawChart(s.history);
    renderMix('status-bar', 'status-list', r.byStatus, STATUS_COLORS);
    renderMix(null, 'cache-list', pick(r.byCache, ['hit', 'stale', 'revalidated', 'miss', 'bypass']), CACHE_COLORS);
    const p = r.byProtocol || { http1: 0, http2: 0 };
    renderMix(null, 'protocol-list', { 'HTTP/1.x': p.http1, 'HTTP/2': p.http2 }, PROTOCOL_COLORS);
    const h2 = s.http2;
    setText('http2-sub', h2 ? num(h2.open) + ' HTTP/2 connections open' + (h2.resetFloods ? ' · ' + num(h2.resetFloods) + ' closed for reset floods' : '') : '');
    renderPools(s.pools);
    renderBlocked(s.blocked);
    const rl = s.reloads;
    setText('reload-info', rl.lastSuccessAt ? 'config reloaded ' + new Date(rl.lastSuccessAt).toLocaleTimeString() : '');
  }

  function pick(obj, keys) { const out = {}; for (const k of keys) out[k] = obj[k] || 0; return out; }

  function renderListeners(listeners) {
    const box = $('listeners');
    const key = JSON.stringify(listeners);
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    box.replaceChildren();
    for (const name of Object.keys(listeners)) box.append(el('span', null, [name, el('code', { text: listeners[name] })]), ' ');
  }

  function renderCache(c) {
    if (!c.enabled) {
      setText('hit-ratio', 'off');
      setText('hit-sub', 'cache.enabled: false');
      setText('cache-bytes', '–');
      setText('cache-sub', '');
      $('cache-bar').style.width = '0';
      return;
    }
    setText('hit-ratio', pct(c.hitRatio));
    setText('hit-sub', compact(c.hits) + ' hits · ' + compact(c.misses) + ' misses');
    setText('cache-bytes', bytes(c.bytes));
    const shared = c.shared ? ' · Redis ' + c.shared.status + (c.shared.status === 'up' ? ' (' + compact(c.shared.hits) + ' hits)' : '') : '';
    setText('cache-sub', 'of ' + bytes(c.maxBytes) + ' · ' + num(c.entries) + ' entries · ' + compact(c.evictions) + ' evicted' + shared);
    $('cache-bar').style.width = (c.maxBytes > 0 ? Math.min(100, (c.bytes / c.maxBytes) * 100) : 0).toFixed(2) + '%';
  }

  function renderMix(barId, listId, counts, colors) {
    const keys = Object.keys(counts);
    const total = keys.reduce((a, k) => a + counts[k], 0);
    if (barId) {
      const bar = $(barId);
      if (bar.children.length !== keys.length) {
        bar.replaceChildren(...keys.map((k) => el('span', { style: 'background:' + colors[k], title: k })));
      }
      keys.forEach((k, i) => { bar.children[i].style.flexGrow = String(total ? counts[k] : 0); });
    }
    const list = $(listId);
    if (list.children.length !== keys.length) {
      list.replaceChildren(...keys.map((k) => el('li', { 'data-key': k }, [el('i', { style: 'background:' + (colors[k] || 'var(--s1)') }), el('span', { class: 'k', text: k }), el('span', { class: 'v' })])));
    }
    keys.forEach((k, i) => {
      const v = list.children[i].querySelector('.v');
      const text = compact(counts[k]) + (total ? ' · ' + Math.round((counts[k] / total) * 100) + '%' : '');
      if (v.textContent !== text) v.textContent = text;
    });
  }

  function renderPools(pools) {
    const box = $('pools');
    if (pools.length === 0) {
      if (!box.querySelector('.empty')) box.replaceChildren(el('p', { class: 'empty card', text: 'No pools configured.' }));
      return;
    }
    box.replaceChildren(...pools.map(renderPool));
  }

  function renderPool(p) {
    const up = p.servers.filter((s) => s.state === 'up').length;
    const tags = [
      el('span', { class: 'tag', text: p.balance }),
      el('span', { class: 'tag', text: up + '/' + p.servers.length + ' up' }),
      p.sticky ? el('span', { class: 'tag', text: 'sticky: ' + p.sticky.cookie }) : null,
      p.health ? el('span', { class: 'tag', text: 'health: GET ' + p.health.path + ' every ' + ms(p.health.intervalMs) }) : el('span', { class: 'tag', text: 'passive health only' }),
      p.queued > 0 ? el('span', { class: 'tag', text: p.queued + ' queued' }) : null,
    ];
    const rows = p.servers.map((s) => {
      const action = s.drained
        ? el('button', { type: 'button', text: 'Enable', onclick: () => steer(p.name, s.id, 'enable') })
        : el('button', { type: 'button', text: 'Drain', onclick: () => steer(p.name, s.id, 'drain') });
      return el('tr', { 'data-testid': 'server-' + s.id, 'data-url': s.url, 'data-state': s.state }, [
        el('td', { class: 'state-cell' }, [
          el('span', { class: 'badge ' + s.state, 'data-testid': 'state', text: s.state, title: s.reason || null }),
          s.backup ? el('span', { class: 'backup', text: 'backup' }) : null,
          s.reason ? el('div', { class: 'reason', 'data-testid': 'reason', text: s.reason }) : null,
        ]),
        el('td', { class: 'url', text: s.url }),
        el('td', { class: 'num', 'data-label': 'weight', text: String(s.weight) }),
        el('td', { class: 'num', 'data-label': 'in flight', text: num(s.inflight) }),
        el('td', { class: 'num', 'data-label': 'requests', text: num(s.requests) }),
        el('td', { class: 'num', 'data-label': 'errors', text: num(s.errors) }),
        el('td', { class: 'num' + (s.errorRate >= 0.05 ? ' err-high' : ''), 'data-label': 'error rate', text: pct(s.errorRate) }),
        el('td', { class: 'num', 'data-label': 'EWMA', text: s.latencyEwmaMs ? ms(s.latencyEwmaMs) : '–' }),
        el('td', { class: 'num', 'data-label': 'p99', text: ms(s.latencyP99Ms) }),
        el('td', { class: 'num' }, [action]),
      ]);
    });
    const table = el('table', { class: 'servers' }, [
      el('thead', null, [el('tr', null, ['State', 'Server', 'Weight', 'In flight', 'Requests', 'Errors', 'Error rate', 'EWMA', 'p99', ''].map((h, i) => el('th', { class: i >= 2 ? 'num' : null, text: h })))]),
      el('tbody', null, rows),
    ]);
    return el('div', { class: 'card pool', 'data-testid': 'pool-' + p.name }, [
      el('div', { class: 'pool-head' }, [el('h2', { text: p.name }), ...tags]),
      el('div', { class: 'table-wrap' }, [table]),
    ]);
  }

  async function steer(pool, id, action) {
    const url = '/api/pools/' + encodeURIComponent(pool) + '/servers/' + encodeURIComponent(id) + '/' + action;
    let res;
    try {
      res = await fetch(url, { method: 'POST', headers: headers() });
    } catch (err) {
      notify('error', action + ' failed: no answer from the proxy');
      return;
    }
    if (res.status === 401 || res.status === 403) {
      const body = await res.json().catch(() => ({}));
      pendingAction = () => steer(pool, id, action);
      showAuth('change', token ? (body.error || 'the token was not accepted') + ': try again' : '');
      return;
    }
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      notify('error', action + ' failed: ' + (body.error || res.status));
      return;
    }
    notify('ok', (action === 'drain' ? 'Drained ' : 'Enabled ') + pool + ' / ' + id);
  }

  // ---------- cache entries ----------
  // Searched on demand (not polled): GET /api/cache/entries by URL prefix, paged by cursor.
  const PAGE = 100;
  let cacheCursor = null;
  let cacheSearchId = 0;
  let cacheNeedsToken = false;

  async function searchCache(append) {
    const id = ++cacheSearchId;
    const params = new URLSearchParams({ limit: String(PAGE) });
    const prefix = $('cache-prefix').value.trim();
    const door = $('cache-door').value;
    if (prefix) params.set('prefix', prefix);
    if (door) params.set('door', door);
    if (append && cacheCursor) params.set('cursor', cacheCursor);
    let res;
    try {
      res = await fetch('/api/cache/entries?' + params, { headers: headers(), cache: 'no-store' });
    } catch (err) {
      if (id === cacheSearchId) cacheMessage('No answer from the proxy.');
      return;
    }
    if (id !== cacheSearchId) return; // a newer search is under way
    const body = await res.json().catch(() => ({}));
    cacheNeedsToken = res.status === 401 || res.status === 403;
    if (cacheNeedsToken) {
      showAuth('read', body.error || 'not allowed');
      cacheMessage('The cache listing needs the admin token.');
      return;
    }
    if (!res.ok) {
      cacheMessage(body.error || 'The listing failed (' + res.status + ').');
      return;
    }
    cacheCursor = body.next;
    const rows = body.entries.map(renderEntry);
    const tbody = $('cache-rows');
    if (append) tbody.append(...rows);
    else if (rows.length > 0) tbody.replaceChildren(...rows);
    else cacheMessage(prefix ? 'Nothing stored under ' + prefix + '.' : 'Nothing stored.');
    setText('cache-total', num(body.total) + (body.total === 1 ? ' entry' : ' entries') + (body.workers > 1 ? ' in ' + body.workers + ' workers' : ''));
    $('cache-more').hidden = body.next === null;
    setText('cache-note', body.sharedTier ? 'Entries only in Redis are not listed.' : '');
  }

  function cacheMessage(text) {
    $('cache-rows').replaceChildren(el('tr', null, [el('td', { colspan: '10', class: 'empty', text })]));
    $('cache-more').hidden = true;
  }

  function renderEntry(e) {
    const vary = Object.keys(e.vary).map((k) => k + '=' + (e.vary[k] === null ? '(none)' : e.vary[k])).join(', ');
    const ttl = e.ttl === null ? '–' : e.ttl >= 0 ? duration(e.ttl) : 'stale ' + duration(-e.ttl);
    return el('tr', { 'data-testid': 'entry', 'data-url': e.url, 'data-door': e.door, 'data-state': e.state }, [
      el('td', { class: 'url', text: e.url }),
      el('td', { 'data-label': 'door', text: e.door }),
      el('td', { class: 'vary', 'data-label': 'vary', text: vary || '–' }),
      el('td', { class: 'num', 'data-label': 'status', text: e.status === null ? '–' : String(e.status) }),
      el('td', { class: 'num', 'data-label': 'size', text: bytes(e.size) }),
      el('td', { class: 'num', 'data-label': 'age', text: e.age === null ? '–' : duration(e.age) }),
      el('td', { class: 'num' + (e.state === 'stale' ? ' stale' : ''), 'data-label': 'ttl', text: ttl }),
      el('td', { class: 'num', 'data-label': 'hits', 'data-testid': 'hits', text: num(e.hits) + (e.copies > 1 ? ' (' + e.copies + ' copies)' : '') }),
      el('td', { 'data-label': 'tags', text: e.tags.join(' ') || '–' }),
      el('td', { class: 'num' }, [el('button', { type: 'button', text: 'Purge', title: 'Purge every variant of this URL', onclick: () => purgeEntry(e.url, e.door) })]),
    ]);
  }

  async function purgeEntry(url, door) {
    let res;
    try {
      res = await fetch('/api/cache/purge', { method: 'POST', headers: headers({ 'content-type': 'application/json' }), body: JSON.stringify({ url, door }) });
    } catch (err) {
      notify('error', 'purge failed: no answer from the proxy');
      return;
    }
    if (res.status === 401 || res.status === 403) {
      const body = await res.json().catch(() => ({}));
      pendingAction = () => purgeEntry(url, door);
      showAuth('change', token ? (body.error || 'the token was not accepted') + ': try again' : '', 'Purging needs the admin token (admin.token)');
      return;
    }
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      notify('error', 'purge failed: ' + (body.error || res.status));
      return;
    }
    notify('ok', 'Purged ' + body.purged + (body.purged === 1 ? ' entry' : ' entries') + ' for ' + url);
    searchCache(false);
  }

  let typing = null;
  $('cache-search').addEventListener('submit', (e) => {
    e.preventDefault();
    clearTimeout(typing);
    searchCache(false);
  });
  $('cache-prefix').addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => searchCache(false), 300);
  });
  $('cache-door').addEventListener('change', () => searchCache(false));
  $('cache-more').addEventListener('click', () => searchCache(true));

  let noticeTimer = null;
  function notify(kind, text) {
    const box = $('notice');
    box.dataset.kind = kind;
    box.textContent = text;
    box.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  function renderBlocked(b) {
    setText('blocked-total', b.total ? num(b.total) + ' since start' : '');
    const body = $('blocked-rows');
    if (b.recent.length === 0) {
      if (!body.querySelector('.empty')) body.replaceChildren(el('tr', null, [el('td', { colspan: '5', class: 'empty', text: 'Nothing blocked.' })]));
      return;
    }
    body.replaceChildren(...b.recent.map((r) => el('tr', null, [
      el('td', { 'data-label': 'time', text: new Date(r.at).toLocaleTimeString() }),
      el('td', { 'data-label': 'client', text: r.client + (r.user ? ' (' + r.user + ')' : '') }),
      el('td', { 'data-label': 'method', text: r.method }),
      el('td', { class: 'url', text: r.target }),
      el('td', { class: 'rule', 'data-label': 'rule', text: r.rule }),
    ])));
  }

  // ---------- chart ----------
  function drawChart(h) {
    const canvas = $('chart');
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, ht = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(ht * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(ht * dpr);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, ht);
    const css = getComputedStyle(document.documentElement);
    const accent = css.getPropertyValue('--accent').trim();
    const soft = css.getPropertyValue('--accent-soft').trim();
    const bad = css.getPropertyValue('--bad').trim();
    const muted = css.getPropertyValue('--muted').trim();
    const line = css.getPropertyValue('--line').trim();
    const data = h.requests, errs = h.errors, n = data.length;
    const left = 36, right = 8, top = 8, bottom = 20;
    const pw = w - left - right, ph = ht - top - bottom;
    // Whole requests per tick: an idle minute reads 0 1 2 3 4, not 1 1 1 0 0.
    const step = niceStep(Math.max(1, ...data) / 4);
    const max = step * 4;
    const ticks = [];
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = muted;
    ctx.strokeStyle = line;
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const v = step * i;
      const y = top + ph - (v / max) * ph;
      ctx.beginPath(); ctx.moveTo(left, Math.round(y) + 0.5); ctx.lineTo(w - right, Math.round(y) + 0.5); ctx.stroke();
      ticks.push(compact(v));
      ctx.fillText(ticks[i], left - 6, y);
    }
    canvas.dataset.ticks = ticks.join(',');
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (let m = 0; m <= Math.floor(n / 60); m++) {
      const x = left + pw - ((m * 60) / (n - 1)) * pw;
      if (x < left) break;
      ctx.fillText(m === 0 ? 'now' : '-' + m + 'm', Math.min(Math.max(x, left + 10), w - right - 12), top + ph + 5);
    }
    const xs = (i) => left + (i / (n - 1)) * pw;
    const ys = (v) => top + ph - (Math.min(v, max) / max) * ph;
    ctx.beginPath();
    ctx.moveTo(xs(0), ys(0));
    for (let i = 0; i < n; i++) ctx.lineTo(xs(i), ys(data[i]));
    ctx.lineTo(xs(n - 1), ys(0));
    ctx.closePath();
    ctx.fillStyle = soft;
    ctx.fill();
    ctx.beginPath();
    for (let i = 0; i < n; i++) (i === 0 ? ctx.moveTo : ctx.lineTo).call(ctx, xs(i), ys(data[i]));
    ctx.strokeStyle = accent;
    ctx.lineWidth = 1.6;
    ctx.stroke();
    if (errs.some((v) => v > 0)) {
      ctx.beginPath();
      for (let i = 0; i < n; i++) (i === 0 ? ctx.moveTo : ctx.lineTo).call(ctx, xs(i), ys(errs[i]));
      ctx.strokeStyle = bad;
      ctx.lineWidth = 1.4;
      ctx.stroke();
    }
  }

  // The smallest of 1, 2, 5, 10, 20, 50… at least v: a whole number, so every tick label is exact.
  function niceStep(v) {
    if (v <= 1) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  window.addEventListener('resize', () => { if (latest) drawChart(latest.history); });
  poll();
  searchCache(false);
})();
