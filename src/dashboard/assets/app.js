// abgate dashboard: a single page over the gateway's admin API (no framework, no CDN).
// Every number comes from the API: the analysis report of GET …/results (the same JSON as
// `abgate analyze --format json`), the traffic split of GET …/traffic, the serving counters of
// GET …/health, and the audit log. The page only rounds them for people.
'use strict';

(function () {
  const POLL_MS = 1000;      // live: refreshed every second
  const MAX_AGE_MS = 900;    // a results computation at most this old is good enough
  const TOKEN_KEY = 'abgate.token';
  const SVG = 'http://www.w3.org/2000/svg';
  const COLORS = ['#3569c9', '#e07b24', '#2e9d5b', '#b8428c', '#7a5bc4', '#8c6d31', '#d43f3a', '#17a2b8'];

  const state = {
    token: null,
    experiments: [],     // GET /api/v1/experiments
    results: {},         // name -> report (or {error})
    traffic: {},         // name -> split
    health: {},          // name -> health
    audit: {},           // name -> {version, rows}
    lastOk: 0,
    timer: null,
    busy: false,
    needToken: false,
    route: { name: null },
  };

  // ---------- formatting: at most 4 significant digits ----------
  function num(x, digits) {
    if (x === null || x === undefined || typeof x !== 'number' || !isFinite(x)) return '–';
    if (x === 0) return '0';
    const d = digits || 4;
    const a = Math.abs(x);
    if (a >= 1e6 || a < 1e-4) return x.toExponential(Math.min(d, 4) - 1).replace(/\.?0+e/, 'e');
    let s = Number(x.toPrecision(d)).toString();
    if (a >= 1000) s = Number(s).toLocaleString('en-US');
    return s;
  }
  function count(n) {
    return typeof n === 'number' ? n.toLocaleString('en-US') : '–';
  }
  function pct(x, digits) {
    if (typeof x !== 'number' || !isFinite(x)) return '–';
    return num(x * 100, digits || 4) + '%';
  }
  // Differences and lifts with three significant digits and p-values with four, as the text
  // and HTML reports print them (src/analysis/render.cc), so every screen shows the same figure.
  function signedPct(x) {
    if (typeof x !== 'number' || !isFinite(x)) return '–';
    return (x > 0 ? '+' : '') + pct(x, 3);
  }
  function signedNum(x) {
    if (typeof x !== 'number' || !isFinite(x)) return '–';
    return (x > 0 ? '+' : '') + num(x, 3);
  }
  // A binary metric's difference in percentage points ("+2.99 pp"), any other as a number.
  function diffText(x, binary) {
    if (typeof x !== 'number' || !isFinite(x)) return '–';
    return binary ? signedNum(100 * x) + ' pp' : signedNum(x);
  }
  function pval(p) {
    if (typeof p !== 'number' || !isFinite(p)) return '–';
    if (p < 1e-4) return '< 0.0001';
    return num(p, 4);
  }
  function chance(p) {
    if (typeof p !== 'number' || !isFinite(p)) return '–';
    if (p < 1e-4) return '< 0.01%';
    if (p > 1 - 1e-4) return '> 99.99%';
    return pct(p, 3);
  }
  function interval(ci, f) {
    if (!Array.isArray(ci) || ci.length !== 2) return '';
    return '[' + f(ci[0]) + ', ' + f(ci[1]) + ']';
  }
  // Sentences written by the server may carry full-precision numbers: rounded like the rest.
  function roundInText(text) {
    return String(text || '').replace(/-?\d+\.\d{5,}(e-?\d+)?/g, (m) => num(Number(m)));
  }
  function when(us) {
    if (typeof us !== 'number' || us <= 0) return '–';
    const d = new Date(us / 1000);
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  }
  function ago(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    return s < 60 ? s + ' s ago' : Math.round(s / 60) + ' min ago';
  }

  // ---------- DOM helpers (text only: nothing from the API is parsed as HTML) ----------
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    append(el, children);
    return el;
  }
  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return el;
  }
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) el.setAttribute(k, v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined) continue;
      el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return el;
  }
  function badge(text, kind) {
    return h('span', { class: 'badge ' + (kind || '') }, text);
  }
  const $ = (id) => document.getElementById(id);

  // ---------- token ----------
  function readToken() {
    const hash = window.location.hash || '';
    const m = hash.match(/(?:^#|&)token=([^&]*)/);
    if (m) {
      const token = decodeURIComponent(m[1]);
      try { sessionStorage.setItem(TOKEN_KEY, token); } catch (e) { /* private mode: memory only */ }
      state.token = token;
      // Out of the address bar (and history) at once.
      const rest = hash.replace(/(?:^#|&)token=[^&]*/, '').replace(/^&/, '');
      history.replaceState(null, '', window.location.pathname + window.location.search + (rest ? '#' + rest.replace(/^#?/, '') : ''));
    } else {
      try { state.token = sessionStorage.getItem(TOKEN_KEY); } catch (e) { state.token = null; }
    }
    $('forget').hidden = !state.token;
  }
  function showLogin(message) {
    $('login').hidden = false;
    $('login-error').textContent = message || '';
    $('token').focus();
  }

  // ---------- API ----------
  async function api(method, path, body) {
    const headers = { 'Accept': 'application/json' };
    if (state.token) headers['Authorization'] = 'Bearer ' + state.token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'omit',
    });
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.status === 401) {
      const err = new Error((data && data.message) || 'unauthorized');
      err.unauthorized = true;
      throw err;
    }
    if (!r.ok) {
      const err = new Error((data && (data.error_code ? data.error_code + ': ' : '') + (data.message || '')) || ('HTTP ' + r.status));
      err.status = r.status;
      err.body = data;
      throw err;
    }
    return data;
  }
  const enc = encodeURIComponent;

  // ---------- routing ----------
  function parseRoute() {
    const m = (window.location.hash || '').match(/^#\/experiments\/([^/?#&]+)/);
    state.route = { name: m ? decodeURIComponent(m[1]) : null };
    $('crumb').textContent = state.route.name ? '/ ' + state.route.name : '/ experiments';
  }

  // ---------- refresh ----------
  async function refresh() {
    if (state.busy || state.needToken) return;
    state.busy = true;
    try {
      const list = await api('GET', '/api/v1/experiments');
      state.experiments = (list && list.experiments) || [];
      const names = state.route.name ? [state.route.name] : state.experiments.map((e) => e.name);
      await Promise.all(names.map(async (name) => {
        const jobs = [];
        // An experiment without exposures answers 404: asked again every 5 s, not every second.
        const previous = state.results[name];
        if (!previous || previous.status !== 404 || Date.now() - previous.at > 5000 || state.route.name) {
          jobs.push(api('GET', '/api/v1/experiments/' + enc(name) + '/results?max_age_ms=' + MAX_AGE_MS)
            .then((r) => { state.results[name] = r; },
              (e) => { if (e.unauthorized) throw e; state.results[name] = { error: e.message, status: e.status, at: Date.now() }; }));
        }
        if (state.route.name) {
          jobs.push(api('GET', '/api/v1/experiments/' + enc(name) + '/traffic?max_age_ms=' + MAX_AGE_MS)
            .then((r) => { state.traffic[name] = r; }, (e) => { if (e.unauthorized) throw e; state.traffic[name] = null; }));
          jobs.push(api('GET', '/api/v1/experiments/' + enc(name) + '/health')
            .then((r) => { state.health[name] = r; }, (e) => { if (e.unauthorized) throw e; state.health[name] = null; }));
          const exp = state.experiments.find((e) => e.name === name);
          const version = exp && exp.runtime ? exp.runtime.config_version : 0;
          const cached = state.audit[name];
          if (!cached || cached.version !== version || Date.now() - cached.at > 10000) {
            jobs.push(api('GET', '/api/v1/audit?experiment=' + enc(name) + '&limit=50')
              .then((r) => { state.audit[name] = { version, at: Date.now(), rows: (r && r.audit) || [] }; },
                (e) => { if (e.unauthorized) throw e; }));
          }
        }
        await Promise.all(jobs);
      }));
      state.lastOk = Date.now();
      $('login').hidden = true;
      $('banner').hidden = true;
      render();
    } catch (e) {
      if (e.unauthorized) {
        const refused = !!state.token;
        state.token = null;
        try { sessionStorage.removeItem(TOKEN_KEY); } catch (x) { /* ignore */ }
        $('forget').hidden = true;
        $('view').replaceChildren();
        state.needToken = true;  // no more polling until a token is given
        showLogin(refused ? 'The token was refused: ' + e.message : '');
      } else {
        showBanner('Cannot reach the admin API: ' + e.message);
      }
    } finally {
      state.busy = false;
      updateLive();
    }
  }
  function showBanner(text) {
    const b = $('banner');
    b.textContent = text;
    b.hidden = false;
  }
  function updateLive() {
    const live = $('live');
    if (!state.lastOk) { live.textContent = 'not connected'; live.className = 'live off'; return; }
    const age = Date.now() - state.lastOk;
    live.textContent = age < 3000 ? 'live' : 'stale · updated ' + ago(age);
    live.className = 'live ' + (age < 3000 ? 'on' : 'off');
  }

  // ---------- report accessors (today's keys; newer ones preferred when present) ----------
  function primaryName(report, exp) {
    if (report && report.decision && report.decision.metric) return report.decision.metric;
    const metrics = (exp && exp.metrics) || [];
    const p = metrics.find((m) => m.primary) || metrics[0];
    return p ? p.name : 'booked';
  }
  function seqP(c) {
    if (typeof c.sequential_p_value_adjusted === 'number') return c.sequential_p_value_adjusted;
    return c.sequential_p_value;
  }
  function decisionOf(report) {
    if (!report) return null;
    const d = report.decision;
    if (typeof d === 'string') return { action: d };
    return d || null;
  }
  // A concluded experiment (promoted or rolled back) shows that conclusion; the decision rule's
  // reading of the data stays in the detail view.
  function conclusionOf(report) {
    const c = report && report.conclusion;
    if (!c) return null;
    return { action: c.action === 'promote' ? 'promoted' : 'rolled back', winner: c.winner, version: c.winner_version,
      at_us: c.at_us, reason: c.reason, tested_control: c.tested_control };
  }
  function decisionBadge(d, report) {
    const c = conclusionOf(report);
    if (c) return badge(c.action + ' ' + c.winner, c.action === 'promoted' ? 'good' : 'bad');
    if (!d) return badge('–');
    const kind = { promote: 'good', rollback: 'bad', investigate: 'warn', continue: '' }[d.action] || '';
    return badge(d.action + (d.winner ? ' ' + d.winner : ''), kind);
  }
  function srmBadge(report) {
    const srm = report && report.srm;
    if (!srm) return badge('–');
    if (srm.checked === false) return badge('not checked', 'muted');
    return srm.mismatch ? badge('mismatch', 'bad') : badge('ok', 'good');
  }
  function stateBadge(st) {
    return badge(st || '?', { running: 'good', paused: 'warn', stopped: 'muted' }[st] || '');
  }
  function weightsText(exp) {
    const w = (exp.runtime && exp.runtime.current_weights) || exp.arms.map((a) => a.weight);
    const total = w.reduce((a, b) => a + b, 0) || 1;
    return exp.arms.map((a, i) => a.name + ' ' + num(100 * w[i] / total, 3) + '%').join(' · ');
  }
  // runtime.ramp_step: 0 = the arms' own weights (before the first ramp entry), k = ramp[k - 1].
  function rampText(exp) {
    const ramp = exp.ramp || [];
    if (!ramp.length) return 'fixed';
    const step = exp.runtime ? exp.runtime.ramp_step : 0;
    return step ? 'step ' + step + ' of ' + ramp.length : 'before step 1 of ' + ramp.length;
  }
  function durationUs(v) {
    const m = typeof v === 'string' ? v.match(/^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/) : null;
    if (m) return Number(m[1]) * { ms: 1e3, s: 1e6, m: 6e7, h: 3.6e9, d: 8.64e10 }[m[2]];
    return typeof v === 'number' ? v * 1000 : 0;
  }
  function duration(v) {
    let ms = typeof v === 'number' ? v : NaN;
    const m = typeof v === 'string' ? v.match(/^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/) : null;
    if (m) ms = Number(m[1]) * { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[m[2]];
    if (!isFinite(ms)) return String(v);
    if (ms === 0) return 'start';
    for (const [unit, size] of [['d', 8.64e7], ['h', 3.6e6], ['min', 6e4], ['s', 1e3]]) {
      if (ms >= size) return '+' + num(ms / size, 3) + ' ' + unit;
    }
    return '+' + num(ms) + ' ms';
  }

  // ---------- list view ----------
  function renderList() {
    const rows = state.experiments.map((exp) => {
      const report = state.results[exp.name];
      const ok = report && !report.error;
      const primary = primaryName(ok ? report : null, exp);
      const comps = ok ? (report.comparisons || []).filter((c) => c.metric === primary && !c.insufficient_data) : [];
      const units = ok ? (report.arms || []).map((a) => h('div', {}, a.arm + ': ', h('b', {}, count(a.units)))) : [report && report.error ? h('span', { class: 'muted' }, report.status === 404 ? 'no traffic yet' : report.error) : '…'];
      return h('tr', { 'data-experiment': exp.name },
        h('td', {}, h('a', { href: '#/experiments/' + enc(exp.name), class: 'exp-link' }, exp.name), exp.default ? badge('default', 'muted') : null),
        h('td', {}, stateBadge(exp.state)),
        h('td', {}, exp.routing_mode || ''),
        h('td', {}, weightsText(exp)),
        h('td', { class: 'units' }, units),
        h('td', {}, comps.length ? comps.map((c) => h('div', {}, c.treatment + ' ', h('b', {}, signedPct(c.lift)), ' ', h('span', { class: 'muted' }, interval(c.lift_ci, signedPct)))) : '–',
          h('div', { class: 'muted small' }, primary)),
        h('td', {}, comps.length ? comps.map((c) => h('div', {}, pval(seqP(c)))) : '–'),
        h('td', {}, ok ? srmBadge(report) : '–'),
        h('td', {}, ok ? decisionBadge(decisionOf(report), report) : '–'),
        h('td', {}, rampText(exp)));
    });
    const table = h('table', { class: 'grid', id: 'experiments' },
      h('thead', {}, h('tr', {}, ['Experiment', 'State', 'Mode', 'Weights now', 'Units per arm', 'Primary lift [CI]', 'Sequential p', 'SRM', 'Decision', 'Rollout'].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows));
    $('view').replaceChildren(h('section', { class: 'card' }, h('h2', {}, 'Experiments'),
      state.experiments.length ? table : h('p', { class: 'muted' }, 'No experiments on this gateway.')));
  }

  // ---------- charts (hand-written SVG) ----------
  function chartFrame(width, height, pad) {
    const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', class: 'chart', role: 'img' });
    return { svg, x0: pad.l, x1: width - pad.r, y0: height - pad.b, y1: pad.t };
  }
  function niceTicks(lo, hi, n) {
    if (!(hi > lo)) { hi = lo + 1; }
    const raw = (hi - lo) / n;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((m) => m >= raw) || raw;
    const ticks = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) ticks.push(Number(v.toPrecision(12)));
    return ticks;
  }
  function timeLabel(us, withSeconds) {
    const d = new Date(us / 1000);
    return d.toISOString().slice(11, withSeconds ? 19 : 16);
  }

  // Share of new units per arm in each interval (stacked to 100%), with the counts on hover.
  function trafficChart(split) {
    const W = 640, H = 220;
    const f = chartFrame(W, H, { l: 44, r: 10, t: 10, b: 28 });
    const bins = (split && split.bins) || [];
    const arms = (split && split.arms) || [];
    if (!bins.length) return h('p', { class: 'muted' }, 'No units yet.');
    const bw = (f.x1 - f.x0) / bins.length;
    const y = (v) => f.y0 - v * (f.y0 - f.y1);
    for (const t of [0, 0.25, 0.5, 0.75, 1]) {
      f.svg.appendChild(s('line', { x1: f.x0, x2: f.x1, y1: y(t), y2: y(t), class: 'gridline' }));
      f.svg.appendChild(s('text', { x: f.x0 - 6, y: y(t) + 4, 'text-anchor': 'end', class: 'tick' }, Math.round(t * 100) + '%'));
    }
    bins.forEach((b, i) => {
      const total = b.units.reduce((a, c) => a + c, 0);
      let acc = 0;
      b.units.forEach((n, a) => {
        if (!total || !n) return;
        const share = n / total;
        const rect = s('rect', { x: f.x0 + i * bw + 0.5, width: Math.max(bw - 1, 0.5), y: y(acc + share), height: y(acc) - y(acc + share), fill: COLORS[a % COLORS.length], class: 'bar' },
          s('title', {}, `${timeLabel(b.start_us, true)}–${timeLabel(b.end_us, true)} UTC: ${arms[a]} ${count(n)} of ${count(total)} new units (${pct(share, 3)})`));
        f.svg.appendChild(rect);
        acc += share;
      });
    });
    const first = bins[0].start_us, last = bins[bins.length - 1].end_us;
    const short = last - first < 3600e6;
    const day = new Date(first / 1000).toISOString().slice(0, 10);
    f.svg.appendChild(s('text', { x: f.x0, y: H - 8, class: 'tick' }, day + ' ' + timeLabel(first, short) + ' UTC'));
    f.svg.appendChild(s('text', { x: f.x1, y: H - 8, 'text-anchor': 'end', class: 'tick' }, timeLabel(last, short) + ' UTC'));
    f.svg.setAttribute('aria-label', 'traffic split over time');
    f.svg.setAttribute('id', 'traffic-chart');
    return h('div', {}, f.svg, legend(arms));
  }
  function legend(names) {
    return h('div', { class: 'legend' }, names.map((n, i) => h('span', { class: 'key' }, h('i', { class: 'swatch c' + (i % COLORS.length) }), n)));
  }

  // The primary metric's cumulative lift with its confidence sequence, per treatment.
  function liftChart(report) {
    const series = (report.timeline || []).filter((t) => (t.points || []).length);
    if (!series.length) return h('p', { class: 'muted' }, 'Not enough units for the lift over time yet (40 or more).');
    const W = 640, H = 240;
    const f = chartFrame(W, H, { l: 52, r: 10, t: 12, b: 28 });
    // The first looks have very wide bands: the scale follows the last three quarters (earlier
    // bands are clipped at the frame), so the current estimate stays readable.
    let lo = 0, hi = 0, umax = 1;
    for (const t of series) {
      t.points.forEach((p, i) => {
        umax = Math.max(umax, p.units);
        if (i < Math.floor(t.points.length / 4)) return;
        lo = Math.min(lo, p.ci[0], p.lift); hi = Math.max(hi, p.ci[1], p.lift);
      });
    }
    const span = hi - lo || 1;
    lo -= span * 0.05; hi += span * 0.05;
    const x = (u) => f.x0 + (u / umax) * (f.x1 - f.x0);
    const y = (v) => f.y0 - ((v - lo) / (hi - lo)) * (f.y0 - f.y1);
    for (const t of niceTicks(lo, hi, 5)) {
      f.svg.appendChild(s('line', { x1: f.x0, x2: f.x1, y1: y(t), y2: y(t), class: t === 0 ? 'zero' : 'gridline' }));
      f.svg.appendChild(s('text', { x: f.x0 - 6, y: y(t) + 4, 'text-anchor': 'end', class: 'tick' }, signedPct(t)));
    }
    const clipId = 'lift-clip';
    f.svg.appendChild(s('defs', {}, s('clipPath', { id: clipId }, s('rect', { x: f.x0, y: f.y1, width: f.x1 - f.x0, height: f.y0 - f.y1 }))));
    const plot = s('g', { 'clip-path': `url(#${clipId})` });
    f.svg.appendChild(plot);
    const armIndex = (name) => Math.max(0, (report.arms || []).findIndex((a) => a.arm === name));
    for (const t of series) {
      const c = COLORS[armIndex(t.treatment) % COLORS.length];
      const pts = t.points;
      const band = pts.map((p) => `${x(p.units)},${y(p.ci[1])}`).concat(pts.slice().reverse().map((p) => `${x(p.units)},${y(p.ci[0])}`));
      plot.appendChild(s('polygon', { points: band.join(' '), fill: c, 'fill-opacity': 0.15, class: 'band' }));
      plot.appendChild(s('polyline', { points: pts.map((p) => `${x(p.units)},${y(p.lift)}`).join(' '), fill: 'none', stroke: c, 'stroke-width': 2, class: 'lift-line' }));
      for (const p of pts) {
        plot.appendChild(s('circle', { cx: x(p.units), cy: y(p.lift), r: 2.5, fill: c },
          s('title', {}, `${t.treatment} after ${count(p.units)} units (${when(p.ts_us)}): lift ${signedPct(p.lift)}, confidence sequence ${interval(p.ci, signedPct)}`)));
      }
    }
    f.svg.appendChild(s('text', { x: f.x1, y: H - 8, 'text-anchor': 'end', class: 'tick' }, count(umax) + ' units'));
    f.svg.appendChild(s('text', { x: f.x0, y: H - 8, class: 'tick' }, '0'));
    f.svg.setAttribute('aria-label', 'cumulative lift with its confidence sequence');
    f.svg.setAttribute('id', 'lift-chart');
    return h('div', {}, f.svg, h('p', { class: 'muted small' },
      'Lift of ' + (series[0].metric || 'the primary metric') + ' over control as units arrive; the band is the always-valid confidence sequence (it may be looked at any time). Lift is significant once the band leaves 0.'));
  }

  // ---------- health ----------
  function p99Ms(buckets) {
    if (!Array.isArray(buckets) || !buckets.length) return null;
    const total = buckets[buckets.length - 1].count;
    if (!total) return null;
    const target = total * 0.99;
    for (const b of buckets) {
      if (b.count >= target) return b.le === '+Inf' ? Infinity : b.le;
    }
    return null;
  }
  function healthTable(exp, health) {
    if (!health) return h('p', { class: 'muted' }, 'No serving counters.');
    const g = exp.guardrails || {};
    // 0 (the default) means no limit.
    const maxErr = typeof g.max_error_rate === 'number' && g.max_error_rate > 0 ? g.max_error_rate : null;
    const maxP99 = typeof g.max_p99_latency_ms === 'number' && g.max_p99_latency_ms > 0 ? g.max_p99_latency_ms : null;
    const rows = (health.arms || []).map((a) => {
      const attempts = a.attempts || 0;
      const errRate = attempts ? (a.failures || 0) / attempts : null;
      const p99 = p99Ms(a.latency_ms_buckets);
      const e2e = p99Ms(a.request_latency_ms_buckets);
      const errBad = maxErr !== null && errRate !== null && errRate > maxErr;
      const p99Bad = maxP99 !== null && p99 !== null && p99 > maxP99;
      return h('tr', {},
        h('td', {}, a.arm), h('td', {}, a.version || ''),
        h('td', {}, count(attempts)), h('td', {}, count(a.failures)), h('td', {}, errRate === null ? '–' : pct(errRate, 3)),
        h('td', {}, count(a.fallbacks)),
        h('td', {}, a.backend ? a.backend.replace('_', '-') : '–'),
        h('td', {}, p99 === null ? '–' : (p99 === Infinity ? '> 10 s' : '≤ ' + num(p99, 3) + ' ms')),
        h('td', {}, e2e === null ? '–' : (e2e === Infinity ? '> 10 s' : '≤ ' + num(e2e, 3) + ' ms')),
        h('td', {}, attempts ? (errBad || p99Bad ? badge('breach', 'bad') : badge('ok', 'good')) : badge('no data', 'muted')));
    });
    return h('div', {},
      h('table', { class: 'grid', id: 'health' },
        h('thead', {}, h('tr', {}, ['Arm', 'Version', 'Model calls', 'Failures', 'Error rate', 'Fallbacks to control', 'Served', 'Model p99', 'End-to-end p99', 'Guardrail'].map((t) => h('th', {}, t)))),
        h('tbody', {}, rows)),
      h('p', { class: 'muted small' }, 'Since this gateway started. Guardrails: ',
        maxErr !== null ? 'error rate ≤ ' + pct(maxErr, 3) : 'no error-rate limit', ', ',
        maxP99 !== null ? 'p99 ≤ ' + num(maxP99) + ' ms' : 'no latency limit',
        '. Latencies are the upper edge of the histogram bucket holding the 99th percentile; the guardrail uses the model p99, as the controller does.'));
  }

  // ---------- detail view ----------
  function kv(pairs) {
    return h('dl', { class: 'kv' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  }
  function metricCell(m) {
    if (!m) return '–';
    if (m.insufficient_data) return h('span', { class: 'muted', title: m.insufficient_data }, 'insufficient data');
    const value = typeof m.mean === 'number' ? m.mean : m.value;
    const isRate = m.type === 'binary';
    const f = isRate ? (v) => pct(v) : (v) => num(v);  // as the text report: 4 significant digits
    return h('span', {}, h('b', {}, f(value)), ' ', h('span', { class: 'muted' }, interval(m.ci, f)));
  }
  function armsTable(exp, report) {
    const metricNames = [];
    for (const a of report.arms || []) for (const k of Object.keys(a.metrics || {})) if (!metricNames.includes(k)) metricNames.push(k);
    const w = (exp.runtime && exp.runtime.current_weights) || [];
    const totalW = w.reduce((a, b) => a + b, 0) || 1;
    const cfgArm = (name) => (exp.arms || []).find((a) => a.name === name) || {};
    const rows = (report.arms || []).map((a, i) => {
      const c = cfgArm(a.arm);
      const idx = (exp.arms || []).findIndex((x) => x.name === a.arm);
      const backend = c.upstream ? 'upstream' : 'in-process';
      return h('tr', { 'data-arm': a.arm },
        h('td', {}, h('i', { class: 'swatch c' + (i % COLORS.length) }), a.arm, a.arm === report.control ? badge('control', 'muted') : null),
        h('td', { class: 'version' }, a.model_version || c.version || ''),
        h('td', { class: 'muted' }, backend),
        h('td', {}, idx >= 0 && w.length ? pct(w[idx] / totalW, 3) : '–'),
        h('td', { class: 'arm-units' }, count(a.units)),
        h('td', {}, count(a.exposures)),
        metricNames.map((k) => h('td', {}, metricCell((a.metrics || {})[k]))));
    });
    return h('table', { class: 'grid', id: 'arms' },
      h('thead', {}, h('tr', {}, ['Arm', 'Model version', 'Served', 'Weight now', 'Units', 'Exposures'].concat(metricNames).map((t) => h('th', {}, t)))),
      h('tbody', {}, rows));
  }
  function comparisonsTable(report) {
    const comps = report.comparisons || [];
    if (!comps.length) return h('p', { class: 'muted' }, 'No comparisons yet.');
    const hasFamily = comps.some((c) => c.family);
    const rows = comps.map((c) => {
      if (c.insufficient_data) {
        return h('tr', {}, h('td', {}, c.metric), h('td', {}, c.treatment + ' vs ' + c.control),
          h('td', { colspan: hasFamily ? 8 : 7, class: 'muted' }, 'insufficient data: ' + c.insufficient_data));
      }
      const isRate = !['auc'].includes(c.metric) && typeof c.lift === 'number';
      const binary = (report.arms || []).some((a) => ((a.metrics || {})[c.metric] || {}).type === 'binary');
      const diffOf = (x) => diffText(x, binary);
      // CUPED: the numbers in the row are the adjusted ones (the decision's); the raw ones beside.
      const cu = c.cuped && typeof c.cuped === 'object' ? c.cuped : null;
      const cupedNote = !cu ? null : cu.applied
        ? h('div', { class: 'muted small cuped' }, `CUPED on ${cu.covariate}: variance ${signedPct(-cu.variance_reduction)}; unadjusted ${num((cu.unadjusted || {}).diff)} p ${pval((cu.unadjusted || {}).p_value)}`)
        : h('div', { class: 'muted small cuped' }, `CUPED on ${cu.covariate} not applied: ${cu.reason || ''}`);
      return h('tr', {},
        h('td', {}, c.metric, cupedNote), h('td', {}, c.treatment + ' vs ' + c.control),
        h('td', {}, diffOf(c.diff), ' ', h('span', { class: 'muted' }, interval(c.diff_ci, (x) => signedNum(binary ? 100 * x : x)))),
        h('td', {}, isRate || typeof c.lift === 'number' ? [h('b', {}, signedPct(c.lift)), ' ', h('span', { class: 'muted' }, interval(c.lift_ci, signedPct))] : '–'),
        h('td', {}, h('span', {}, pval(c.p_value)), typeof c.p_value_adjusted === 'number' ? h('span', { class: 'muted' }, ' adj ' + pval(c.p_value_adjusted)) : null),
        h('td', {}, h('span', {}, pval(c.sequential_p_value)), typeof c.sequential_p_value_adjusted === 'number' ? h('span', { class: 'muted' }, ' adj ' + pval(c.sequential_p_value_adjusted)) : null),
        hasFamily ? h('td', {}, c.family || '') : null,
        h('td', {}, typeof c.chance_to_beat === 'number' ? chance(c.chance_to_beat) : '–'),
        h('td', {}, c.significant ? badge('significant', 'good') : badge('no', 'muted')));
    });
    const heads = ['Metric', 'Comparison', 'Difference [CI]', 'Lift [CI]', 'p (fixed)', 'Sequential p'];
    if (hasFamily) heads.push('Family');
    heads.push('Chance to beat', 'Result');
    return h('table', { class: 'grid', id: 'comparisons' }, h('thead', {}, h('tr', {}, heads.map((t) => h('th', {}, t)))), h('tbody', {}, rows));
  }
  // A bandit's report: IPW rate per arm, its traffic now and the posterior probability of being
  // best, in place of comparisons (fixed-horizon p-values do not apply to adaptive traffic).
  function banditTable(report) {
    const b = report.bandit;
    const rows = (b.arms || []).map((a) => h('tr', {},
      h('td', {}, a.arm), h('td', {}, pct(a.weight, 3)), h('td', {}, count(a.requests)),
      h('td', {}, typeof a.ipw_mean === 'number' ? [h('b', {}, num(a.ipw_mean)), ' ', h('span', { class: 'muted' }, interval(a.ipw_ci, num))]
        : h('span', { class: 'muted' }, a.insufficient_data || '–')),
      h('td', {}, pct(a.prob_best, 3))));
    return [h('table', { class: 'grid', id: 'bandit' },
      h('thead', {}, h('tr', {}, ['Arm', 'Traffic now', 'Requests', b.metric + ' (IPW) [CI]', 'P(best)'].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows)),
      h('p', { class: 'muted small' }, b.note || '')];
  }
  function srmBlock(report) {
    const srm = report.srm || {};
    const pairs = [['Observed units', (srm.observed || []).map(count).join(' : ')]];
    if (srm.checked === false) pairs.push(['Checked', 'no — ' + (srm.reason || '')]);
    else {
      pairs.push(['Expected share', (srm.expected_share || []).map((x) => pct(x, 3)).join(' : ')]);
      pairs.push(['χ² / p', num(srm.chi2) + ' / ' + pval(srm.p_value)]);
      pairs.push(['Verdict', srm.mismatch ? badge('sample ratio mismatch', 'bad') : badge('split as configured', 'good')]);
      if (srm.note) pairs.push(['Note', srm.note]);
    }
    if (report.outcomes) {
      const u = report.outcomes.unattributed || {};
      pairs.push(['Outcomes attributed', count(report.outcomes.attributed)]);
      pairs.push(['Not attributed', `${count(u.before_exposure)} before exposure · ${count(u.after_window)} after the window · ${count(u.unknown_unit)} unknown unit`]);
    }
    if (report.multiple_exposure_units) pairs.push(['Units seen in two arms (excluded)', count(report.multiple_exposure_units)]);
    return kv(pairs);
  }
  function guardrailsBlock(report) {
    const g = report.guardrails;
    if (!Array.isArray(g) || !g.length) return null;
    return h('table', { class: 'grid' },
      h('thead', {}, h('tr', {}, ['Guardrail', 'Arm', 'Status', 'Observed', 'Limit', 'Detail'].map((t) => h('th', {}, t)))),
      h('tbody', {}, g.map((r) => h('tr', {}, h('td', {}, r.name || ''), h('td', {}, r.arm || ''),
        h('td', {}, badge(String(r.status || ''), /fail|breach/.test(String(r.status)) ? 'bad' : 'good')),
        h('td', {}, num(r.observed)), h('td', {}, num(r.limit)), h('td', {}, r.detail || '')))));
  }
  function rolloutBlock(exp) {
    const ramp = exp.ramp || [];
    const step = exp.runtime ? exp.runtime.ramp_step : 0;
    const start = exp.runtime ? exp.runtime.start_us : 0;
    if (!ramp.length) {
      return h('p', {}, 'Fixed weights (', weightsText(exp), '), no time-based ramp. Weight changes and promotions made by hand or by the controller are in the audit trail below.');
    }
    return h('div', {}, h('table', { class: 'grid', id: 'ramp' },
      h('thead', {}, h('tr', {}, ['Step', 'After the start', 'Weights', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, ramp.map((r, i) => h('tr', { class: i === step - 1 ? 'current' : (i < step - 1 ? 'done' : '') },
        h('td', {}, String(i + 1)), h('td', {}, duration(r.after)),
        h('td', {}, (r.weights || []).map((w, j) => (exp.arms[j] ? exp.arms[j].name : j) + ' ' + num(w)).join(' · ')),
        h('td', {}, i === step - 1 ? badge('now', 'good') : (i < step - 1 ? 'done' : (start ? 'at ' + when(start + durationUs(r.after)) : ''))))))),
      h('p', { class: 'muted small' }, 'Ramp clock started ' + when(start) + '.'));
  }
  function shadowBlock(report) {
    const sh = report.shadow;
    if (!sh || typeof sh !== 'object') return h('p', { class: 'muted' }, 'No shadow traffic.');
    const pairs = [];
    const walk = (obj, prefix) => {
      for (const [k, v] of Object.entries(obj)) {
        const label = (prefix ? prefix + ' ' : '') + k.replace(/_/g, ' ');
        if (v && typeof v === 'object' && !Array.isArray(v)) walk(v, label);
        else pairs.push([label, typeof v === 'number' ? (Number.isInteger(v) ? count(v) : num(v)) : (Array.isArray(v) ? v.map((x) => typeof x === 'number' ? num(x) : String(x)).join(', ') : String(v))]);
      }
    };
    walk(sh, '');
    const block = [kv(pairs)];
    // The paired offline comparison on the same requests (the report's shadow_evaluation).
    for (const e of report.shadow_evaluation || []) {
      if (e.insufficient_data) {
        block.push(h('p', { class: 'muted shadow-eval' }, `${e.shadow_arm} vs ${e.arm}: insufficient data — ${e.insufficient_data}`));
        continue;
      }
      const verdict = e.shadow_worse ? badge('shadow worse offline', 'bad') : e.shadow_better ? badge('shadow better offline', 'good') : badge('no significant difference', 'muted');
      block.push(h('p', { class: 'shadow-eval' }, `${e.shadow_arm} (shadow) vs ${e.arm} (served) on ${count(e.requests)} requests with outcomes: `,
        `AUC ${num(e.auc.shadow)} vs ${num(e.auc.served)}, diff ${num(e.auc.diff)} ${interval(e.auc.diff_ci, num)}, p ${pval(e.auc.p_value)}; `,
        `log loss ${num(e.log_loss.shadow)} vs ${num(e.log_loss.served)}, diff ${num(e.log_loss.diff)} ${interval(e.log_loss.diff_ci, num)}, p ${pval(e.log_loss.p_value)} `, verdict));
    }
    return block;
  }
  function auditSummary(row) {
    const before = row.before && row.before.experiment ? row.before.experiment : row.before;
    const after = row.after && row.after.experiment ? row.after.experiment : row.after;
    const parts = [];
    if (before && after && typeof before === 'object' && typeof after === 'object') {
      if (before.state !== after.state) parts.push(`state ${before.state} → ${after.state}`);
      const bw = (before.arms || []).map((a) => a.weight).join('/');
      const aw = (after.arms || []).map((a) => a.weight).join('/');
      if (bw !== aw) parts.push(`weights ${bw} → ${aw}`);
      if (before.control !== after.control) parts.push(`control ${before.control} → ${after.control}`);
      const bv = (before.arms || []).map((a) => a.version).join('/');
      const av = (after.arms || []).map((a) => a.version).join('/');
      if (bv !== av) parts.push(`versions ${bv} → ${av}`);
    }
    if (row.after && row.after.evidence) {
      const e = row.after.evidence;
      parts.push('evidence: ' + Object.entries(e).slice(0, 4).map(([k, v]) => k + ' ' + (typeof v === 'number' ? num(v) : String(v))).join(', '));
    }
    if (row.after && typeof row.after.assignments === 'number') parts.push(count(row.after.assignments) + ' assignments');
    return parts.join('; ');
  }
  function auditTable(name) {
    const a = state.audit[name];
    if (!a) return h('p', { class: 'muted' }, 'Loading…');
    if (!a.rows.length) return h('p', { class: 'muted' }, 'No changes recorded.');
    return h('table', { class: 'grid', id: 'audit' },
      h('thead', {}, h('tr', {}, ['When', 'Who', 'From', 'Action', 'Change'].map((t) => h('th', {}, t)))),
      h('tbody', {}, a.rows.map((r) => h('tr', {}, h('td', {}, when(r.ts_us)), h('td', {}, r.actor || ''), h('td', { class: 'muted' }, r.remote_addr || ''),
        h('td', {}, r.action || ''), h('td', {}, auditSummary(r))))));
  }

  // ---------- actions (each confirmed, through the admin API, hence audited) ----------
  function confirmAction(title, body, run) {
    const dlg = $('confirm');
    $('confirm-title').textContent = title;
    $('confirm-body').replaceChildren(...[].concat(body));
    $('confirm-error').textContent = '';
    const ok = $('confirm-ok'), cancel = $('confirm-cancel');
    const close = () => { ok.onclick = null; cancel.onclick = null; dlg.close(); };
    cancel.onclick = close;
    ok.onclick = async () => {
      ok.disabled = true;
      try {
        await run();
        close();
        state.audit = {};
        await refresh();
      } catch (e) {
        $('confirm-error').textContent = e.message;
      } finally {
        ok.disabled = false;
      }
    };
    dlg.showModal();
  }
  function post(name, verb, body) {
    return api('POST', '/api/v1/experiments/' + enc(name) + '/' + verb, body === undefined ? {} : body);
  }
  function actionsBar(exp, report) {
    const name = exp.name;
    const control = exp.control;
    const treatments = exp.arms.filter((a) => a.name !== control);
    const d = decisionOf(report);
    const bar = h('div', { class: 'actions' });
    if (exp.state === 'running') {
      bar.appendChild(h('button', { type: 'button', id: 'action-pause', onclick: () => confirmAction('Pause ' + name + '?',
        [h('p', {}, 'Every request is served by the control arm ', h('b', {}, control), ' until you resume. New traffic stops counting towards the experiment; what was collected is kept.')],
        () => post(name, 'pause')) }, 'Pause'));
    } else if (exp.state === 'paused') {
      bar.appendChild(h('button', { type: 'button', id: 'action-resume', onclick: () => confirmAction('Resume ' + name + '?',
        [h('p', {}, 'Traffic is split again as configured: ', weightsText(exp), '.')],
        () => post(name, 'resume')) }, 'Resume'));
    }
    if (exp.state !== 'stopped') {
      bar.appendChild(h('button', { type: 'button', id: 'action-weights', onclick: () => weightsDialog(exp) }, 'Set weights…'));
      if (treatments.length === 1) {
        bar.appendChild(h('button', { type: 'button', id: 'action-ramp', onclick: () => rampDialog(exp, treatments[0]) }, 'Ramp step…'));
      }
      bar.appendChild(h('button', { type: 'button', id: 'action-promote', class: 'good', onclick: () => promoteDialog(exp, d) }, 'Promote…'));
      bar.appendChild(h('button', { type: 'button', id: 'action-rollback', class: 'danger', onclick: () => confirmAction('Roll back ' + name + '?',
        [h('p', {}, 'All traffic goes to the control arm ', h('b', {}, control), ' (version ', (exp.arms.find((a) => a.name === control) || {}).version || '?', ') and the experiment stops. A stopped experiment cannot be resumed; start a new one to test again.')],
        () => post(name, 'rollback', { evidence: evidenceOf(report) })) }, 'Roll back'));
    }
    return bar;
  }
  function evidenceOf(report) {
    const d = decisionOf(report) || {};
    return { source: 'dashboard', decision: d.action || null, reason: d.reason || null };
  }
  function currentShares(exp) {
    const w = (exp.runtime && exp.runtime.current_weights) || exp.arms.map((a) => a.weight);
    const total = w.reduce((a, b) => a + b, 0) || 1;
    return w.map((x) => 100 * x / total);
  }
  function weightsDialog(exp) {
    const shares = currentShares(exp);
    const inputs = exp.arms.map((a, i) => h('input', { type: 'number', min: 0, step: 'any', value: num(shares[i], 4), 'aria-label': 'weight of ' + a.name, 'data-arm': a.name }));
    const allow = h('input', { type: 'checkbox', id: 'allow-reassign' });
    confirmAction('Set the weights of ' + exp.name, [
      h('p', {}, 'New traffic is split by these weights (any scale). Units keep their arm unless the arm they are in shrinks; a change that would move units out of an arm whose weight does not go down is refused unless you allow it. Any time-based ramp ends.'),
      h('div', { class: 'weights' }, exp.arms.map((a, i) => h('label', {}, a.name + ' ', inputs[i]))),
      h('label', { class: 'small' }, allow, ' allow moving units between arms (audited)'),
    ], () => post(exp.name, 'weights', { weights: inputs.map((x) => Number(x.value)), allow_reassignment: allow.checked }));
  }
  function rampDialog(exp, treatment) {
    const shares = currentShares(exp);
    const ti = exp.arms.indexOf(treatment);
    const now = shares[ti];
    const steps = [1, 5, 10, 25, 50, 100].filter((p) => p > now + 1e-9);
    if (!steps.length) {
      confirmAction('Ramp ' + exp.name, [h('p', {}, treatment.name + ' already gets ' + num(now, 3) + '% of the traffic. Promote it to make it the only version.')], async () => {});
      return;
    }
    const select = h('select', { id: 'ramp-percent', 'aria-label': 'new share' }, steps.map((p) => h('option', { value: p }, p + '%')));
    const consequence = h('p', {});
    const update = () => {
      const p = Number(select.value);
      consequence.textContent = `${treatment.name} (version ${treatment.version}) goes from ${num(now, 3)}% to ${p}% of the traffic; the control keeps the rest. Units already in ${treatment.name} stay there; some control units move to ${treatment.name}.` +
        ((exp.ramp || []).length ? ' The time-based ramp ends: these weights replace it.' : '');
    };
    select.addEventListener('change', update);
    update();
    confirmAction('Next ramp step for ' + exp.name, [h('label', {}, 'Share for ' + treatment.name + ' ', select), consequence], () => {
      const p = Number(select.value);
      const others = exp.arms.filter((a) => a !== treatment);
      const rest = 100 - p;
      const otherTotal = others.reduce((acc, a) => acc + shares[exp.arms.indexOf(a)], 0) || others.length;
      const weights = exp.arms.map((a, i) => (a === treatment ? p : rest * (otherTotal ? shares[i] / otherTotal : 1 / others.length)));
      return post(exp.name, 'weights', { weights });
    });
  }
  function promoteDialog(exp, d) {
    const suggested = d && d.action === 'promote' && d.winner ? d.winner : exp.arms.find((a) => a.name !== exp.control).name;
    const select = h('select', { id: 'promote-arm', 'aria-label': 'winner' }, exp.arms.map((a) => h('option', { value: a.name, selected: a.name === suggested }, a.name + ' (version ' + a.version + ')')));
    const note = h('p', {});
    const update = () => {
      const a = exp.arms.find((x) => x.name === select.value);
      note.textContent = `All traffic goes to ${a.name} (version ${a.version}), which becomes the control, and the experiment stops. ` +
        (d && d.action === 'promote' && d.winner === a.name ? 'The analysis recommends this: ' + roundInText(d.reason) : 'The analysis does not recommend this' + (d && d.reason ? ' (' + roundInText(d.reason) + ')' : '') + '.') +
        ' The registry is not changed from here: run `abgate promote` for stages and aliases.';
    };
    select.addEventListener('change', update);
    update();
    confirmAction('Promote a winner in ' + exp.name, [h('label', {}, 'Winner ', select), note], () => post(exp.name, 'promote', { winner: select.value, evidence: evidenceOf(state.results[exp.name]) }));
  }

  function renderDetail(name) {
    const exp = state.experiments.find((e) => e.name === name);
    if (!exp) {
      $('view').replaceChildren(h('section', { class: 'card' }, h('p', {}, 'No experiment named ', h('b', {}, name), ' on this gateway. ', h('a', { href: '#/' }, 'All experiments'))));
      return;
    }
    const report = state.results[name];
    const ok = report && !report.error;
    const d = ok ? decisionOf(report) : null;
    const head = h('section', { class: 'card head' },
      h('div', { class: 'title' }, h('h2', { id: 'experiment-name' }, exp.name), stateBadge(exp.state), ok ? decisionBadge(d, report) : null),
      kv([
        ['Model', exp.model || '–'], ['Mode', exp.routing_mode || ''], ['Control', exp.control],
        ['Weights now', weightsText(exp)], ['Rollout', rampText(exp)],
        ['Config version', String(exp.runtime ? exp.runtime.config_version : '')],
        ['Started', when(exp.runtime ? exp.runtime.start_us : 0)],
        ok ? ['Unit', report.unit + ' · α = ' + num(report.alpha)] : null,
      ]),
      conclusionOf(report) ? (() => {
        const c = conclusionOf(report);
        return h('p', { class: 'decision ' + (c.action === 'promoted' ? 'promote' : 'rollback'), id: 'conclusion' },
          h('b', {}, 'Concluded: ' + c.action + ' ' + c.winner + (c.version ? ' (v' + c.version + ')' : '') + ' at ' + when(c.at_us)),
          c.reason ? ' — ' + roundInText(c.reason) : '',
          '. The results below compare the arms as tested (control ' + c.tested_control + ').');
      })() : null,
      d ? h('p', { class: 'decision ' + (d.action || '') }, h('b', {}, (conclusionOf(report) ? 'Decision rule on this data: ' : 'Decision: ') + d.action + (d.winner ? ' ' + d.winner : '')), d.reason ? ' — ' + roundInText(d.reason) : '') : null,
      actionsBar(exp, ok ? report : null));
    const sections = [head];
    if (!ok) {
      sections.push(h('section', { class: 'card' }, h('h3', {}, 'Results'), h('p', { class: 'muted' }, report ? (report.status === 404 ? 'No exposures stored yet.' : report.error) : 'Loading…')));
      sections.push(h('section', { class: 'card' }, h('h3', {}, 'Guardrail health'), healthTable(exp, state.health[name])));
      sections.push(h('section', { class: 'card' }, h('h3', {}, 'Rollout plan'), rolloutBlock(exp)));
    } else {
      sections.push(h('section', { class: 'card' }, h('h3', {}, 'Arms'), armsTable(exp, report)));
      sections.push(h('div', { class: 'two' },
        h('section', { class: 'card' }, h('h3', {}, 'Traffic split over time'), trafficChart(state.traffic[name]),
          h('p', { class: 'muted small' }, 'Share of new units per arm in each interval (by first exposure).')),
        h('section', { class: 'card' }, h('h3', {}, 'Cumulative lift'), liftChart(report))));
      if (report.bandit) {
        sections.push(h('section', { class: 'card' }, h('h3', {}, 'Bandit (Thompson sampling, floor ' + pct(report.bandit.floor, 3) + ')'), ...banditTable(report)));
      } else {
        sections.push(h('section', { class: 'card' }, h('h3', {}, 'Metrics compared with control', report.adjustment ? h('span', { class: 'muted small' }, ' (p-values adjusted: ' + report.adjustment + ')') : null), comparisonsTable(report)));
      }
      const gr = guardrailsBlock(report);
      sections.push(h('section', { class: 'card' }, h('h3', {}, 'Guardrail health'), gr, healthTable(exp, state.health[name])));
      sections.push(h('div', { class: 'three' },
        h('section', { class: 'card' }, h('h3', {}, 'Sample ratio and outcomes'), srmBlock(report)),
        h('section', { class: 'card' }, h('h3', {}, 'Rollout plan'), rolloutBlock(exp)),
        h('section', { class: 'card' }, h('h3', {}, 'Shadow comparison'), shadowBlock(report))));
    }
    sections.push(h('section', { class: 'card' }, h('h3', {}, 'Audit trail'), auditTable(name)));
    $('view').replaceChildren(...sections);
  }

  function render() {
    if ($('confirm').open) return;  // keep the dialog's inputs as the user left them
    if (state.route.name) renderDetail(state.route.name); else renderList();
  }

  // ---------- start ----------
  function start() {
    readToken();
    parseRoute();
    $('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('token').value.trim();
      if (!t) return;
      state.token = t;
      try { sessionStorage.setItem(TOKEN_KEY, t); } catch (e) { /* memory only */ }
      $('token').value = '';
      $('forget').hidden = false;
      state.needToken = false;
      refresh();
    });
    $('forget').addEventListener('click', () => {
      try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ }
      state.token = null;
      state.needToken = true;
      $('forget').hidden = true;
      $('view').replaceChildren();
      showLogin('');
    });
    window.addEventListener('hashchange', () => {
      if (/(?:^#|&)token=/.test(window.location.hash)) readToken();
      parseRoute();
      render();
      refresh();
    });
    refresh();
    state.timer = setInterval(() => { refresh(); }, POLL_MS);
    setInterval(updateLive, 1000);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
