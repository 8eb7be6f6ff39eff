// End to end: how long after an event is posted the dashboard shows it, and what open dashboards
// cost the gateway (a benchmark, not a test). Run by bench/dashboard_visibility.sh, which fills
// the store (N exposures of experiment "bench", results_refresh_bench's shape) and starts the
// model stand-ins; this script starts the real `abgate serve` (port 0, admin token) on the store
// and measures, printing every figure:
//   first read:  the first results request (the follower builds its units once);
//   visibility:  TRIALS times, new users scored through POST /predict and their outcomes through
//                POST /outcomes while the experiment is busy (BUSY_RPS new users a second with
//                outcomes); the time from the outcomes' 200 to the first refresh of an open
//                dashboard whose results show every acknowledged unit and conversion per arm
//                (p50/p95/max);
//   cost:        the gateway's CPU-seconds per second (utime+stime from /proc/PID/stat) on the
//                busy experiment with 0, 1 and 5 dashboards open, and the analyses they caused
//                (on PostgreSQL also the server's CPU: PG_POSTMASTER_PID and its processes);
//   data plane:  wrk on POST /predict (WRK_S s, 32 connections) without and with 5 dashboards,
//                ROUNDS interleaved rounds: req/s, p99, gateway CPU per request, analyses' CPU;
//   anchor:      the SQL a Grafana/Superset panel would run per refresh on the same store (the
//                sqlite3 CLI, or psql), per-arm units and conversions, timed in the same run.
// A "dashboard" polls what src/dashboard/assets/app.js polls on an experiment's page, at its
// interval: every POLL_MS (skipping a tick while a refresh runs, as the page does) GET
// /api/v1/experiments, then together …/results and …/traffic with max_age_ms=MAX_AGE_MS,
// …/health, and the audit every 10 s. Loopback only; every loop is bounded in time and count;
// only the processes started here are ended, by their handles.
// Usage: node bench/dashboard_visibility.js BINARY STORE_URI MODEL_PORT_A MODEL_PORT_B
//   env: TRIALS=20 BUSY_RPS=50 COST_S=15 WRK_S=10 ROUNDS=2
'use strict';

const { execFile, execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnServe } = require('../tests/dashboard/gateway_harness');

const POLL_MS = 1000;    // src/dashboard/assets/app.js
const MAX_AGE_MS = 900;  // src/dashboard/assets/app.js
const TOKEN = 'visibility-bench-token';
const EXPERIMENT = 'bench';

const env = (name, dflt) => Number(process.env[name] || dflt);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const pct = (v, q) => {
  if (!v.length) return NaN;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');

async function startGateway(binary, store, portA, portB, dir) {
  const yaml = `server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  admin_token_env: ABGATE_VISIBILITY_TOKEN
  threads: 2
events:
  store: '${store}'
experiments:
  - name: ${EXPERIMENT}
    model: m
    default: true
    control: A
    routing_mode: user_hash
    unit: {field: user_id, header: X-User-Id}
    arms:
      - {name: A, version: '7', weight: 80, upstream: 'http://127.0.0.1:${portA}/invocations'}
      - {name: B, version: '8', weight: 20, upstream: 'http://127.0.0.1:${portB}/invocations'}
    metrics:
      - {name: booked, type: binary, primary: true}
      - {name: revenue, type: continuous}
`;
  fs.writeFileSync(path.join(dir, 'gateway.yaml'), yaml);
  const { child, stderr, ports } = await spawnServe(binary, path.join(dir, 'gateway.yaml'),
    { ABGATE_VISIBILITY_TOKEN: TOKEN, ABGATE_LOG_LEVEL: 'warning' }, 60000);
  return {
    child, stderr,
    dataUrl: `http://127.0.0.1:${ports.data}`,
    adminUrl: `http://127.0.0.1:${ports.admin}`,
    async get(p) {
      const r = await fetch(this.adminUrl + p, { headers: { Authorization: 'Bearer ' + TOKEN, Accept: 'application/json' } });
      const text = await r.text();
      if (!r.ok) throw new Error(`GET ${p}: HTTP ${r.status} ${text.slice(0, 300)}`);
      return JSON.parse(text);
    },
    async metric(name) {
      const body = await (await fetch(this.dataUrl + '/metrics')).text();
      const m = body.match(new RegExp('\\n' + name + ' ([0-9.e+-]+)\\n'));
      return m ? Number(m[1]) : 0;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(20000)]);
    },
  };
}

// Units and conversions (booked > 0) per arm, as the results report gives them.
function countsOf(report) {
  const out = {};
  for (const a of report.arms || []) {
    const booked = a.metrics && a.metrics.booked;
    const conv = booked && typeof booked.mean === 'number' ? Math.round(booked.mean * booked.n) : 0;
    out[a.arm] = { units: a.units, conv };
  }
  return out;
}

// One open dashboard on the experiment's page (see the header).
class Viewer {
  constructor(gw) {
    this.gw = gw;
    this.busy = false;
    this.polls = 0;
    this.errors = 0;
    this.latencies = [];
    this.auditAt = 0;
    this.listeners = new Set();
    this.inflight = Promise.resolve();
  }
  start() {
    this.timer = setInterval(() => { this.inflight = this.refresh(); }, POLL_MS);
    this.inflight = this.refresh();
  }
  async stop() {
    clearInterval(this.timer);
    await this.inflight;
  }
  async refresh() {
    if (this.busy) return;
    this.busy = true;
    const started = Date.now();
    try {
      await this.gw.get('/api/v1/experiments');
      const e = encodeURIComponent(EXPERIMENT);
      const jobs = [
        this.gw.get(`/api/v1/experiments/${e}/results?max_age_ms=${MAX_AGE_MS}`),
        this.gw.get(`/api/v1/experiments/${e}/traffic?max_age_ms=${MAX_AGE_MS}`),
        this.gw.get(`/api/v1/experiments/${e}/health`),
      ];
      if (Date.now() - this.auditAt > 10000) {
        this.auditAt = Date.now();
        jobs.push(this.gw.get(`/api/v1/audit?experiment=${e}&limit=50`));
      }
      const [report] = await Promise.all(jobs);
      const now = Date.now();  // the page renders here
      this.latencies.push(now - started);
      this.polls++;
      for (const f of this.listeners) f(report, now);
    } catch (err) {
      this.errors++;
      this.lastError = err.message;
    } finally {
      this.busy = false;
    }
  }
}

// Live traffic: new users scored through the gateway, then their outcomes (a booking for about
// 40%, with revenue; naming the request and the unit) in one NDJSON POST. `acked` counts, per arm, units whose /predict answered
// and conversions whose /outcomes answered: what every later refresh must show.
class Traffic {
  constructor(gw) {
    this.gw = gw;
    this.next = 0;
    this.acked = {};
    this.failures = 0;
  }
  bump(arm, key) {
    this.acked[arm] = this.acked[arm] || { units: 0, conv: 0 };
    this.acked[arm][key]++;
  }
  async users(n) {
    const lines = [];
    const booked = [];
    for (let k = 0; k < n; k++) {
      const i = this.next++;
      const uid = `live-${process.pid}-${i}`;
      const r = await fetch(this.gw.dataUrl + '/predict', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ user_id: uid, inputs: [[1, 2]] }),
      });
      const text = await r.text();
      if (r.status !== 200) { this.failures++; continue; }
      const reply = JSON.parse(text);
      this.bump(reply.model_group, 'units');
      if ((i * 37) % 100 < 40) {
        booked.push(reply.model_group);
        const key = { experiment: EXPERIMENT, request_id: reply.request_id, unit_id: uid };
        lines.push(JSON.stringify({ ...key, metric: 'booked', value: 1 }));
        lines.push(JSON.stringify({ ...key, metric: 'revenue', value: 100 + (i % 50) }));
      }
    }
    if (lines.length) {
      const r = await fetch(this.gw.dataUrl + '/outcomes', {
        method: 'POST', headers: { 'Content-Type': 'application/x-ndjson' }, body: lines.join('\n'),
      });
      await r.text();
      if (r.status !== 200) { this.failures++; return; }
      for (const arm of booked) this.bump(arm, 'conv');
    }
  }
  // BUSY_RPS new users a second in batches every 200 ms until stop() (bounded by `maxMs`).
  busy(rps, maxMs) {
    const end = Date.now() + maxMs;
    this.stopping = false;
    this.loop = (async () => {
      while (!this.stopping && Date.now() < end) {
        const t = Date.now();
        await this.users(Math.max(1, Math.round(rps / 5)));
        const wait = 200 - (Date.now() - t);
        if (wait > 0) await sleep(wait);
      }
    })();
  }
  async stop() {
    this.stopping = true;
    await this.loop;
  }
}

function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;  // utime, stime
}
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
// PostgreSQL's CPU (PG_POSTMASTER_PID): the postmaster's, its live children's, and what its
// exited children used (cutime/cstime, once reaped).
function pgCpuSeconds() {
  const pm = process.env.PG_POSTMASTER_PID;
  if (!pm) return 0;
  let ticks = 0;
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    let f;
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    } catch (e) {
      continue;  // ended meanwhile
    }
    if (p === pm) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    else if (f[1] === pm) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / CLK_TCK;
}

// The anchor: per-arm units (first exposure decides the arm) and conversions (a positive booking
// not before it) in SQL over the whole store, as a SQL panel computes them at every refresh.
function anchorCommand(store) {
  if (store.startsWith('sqlite:')) {
    return ['sqlite3', ['-readonly', store.slice(7),
      `CREATE TEMP TABLE o (unit_id TEXT PRIMARY KEY, t INTEGER) WITHOUT ROWID; INSERT INTO o SELECT unit_id, max(ts)
       FROM outcomes WHERE experiment='${EXPERIMENT}' AND metric='booked' AND value > 0 GROUP BY unit_id;
       SELECT f.arm, count(*), sum(o.t >= f.t) FROM (SELECT unit_id, min(ts) AS t, arm FROM exposures WHERE
       experiment='${EXPERIMENT}' AND in_experiment=1 GROUP BY unit_id) f LEFT JOIN o ON o.unit_id = f.unit_id
       GROUP BY f.arm ORDER BY f.arm;`]];
  }
  return ['psql', [store, '-XAtq', '-F', '|', '-c',
    `WITH f AS (SELECT DISTINCT ON (unit_id) unit_id, ts AS t, arm FROM exposures WHERE experiment='${EXPERIMENT}'
       AND in_experiment=1 ORDER BY unit_id, ts),
     o AS (SELECT unit_id, max(ts) AS t FROM outcomes WHERE experiment='${EXPERIMENT}' AND metric='booked' AND value > 0
       GROUP BY unit_id)
     SELECT f.arm, count(*), count(*) FILTER (WHERE o.t >= f.t) FROM f LEFT JOIN o USING (unit_id) GROUP BY f.arm ORDER BY f.arm;`]];
}
function runAnchor(store) {
  const [cmd, args] = anchorCommand(store);
  const t = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 300000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${cmd}: ${err.message} ${stderr}`));
      resolve({ seconds: Number(process.hrtime.bigint() - t) / 1e9, rows: stdout.trim().split('\n').join(', ') });
    });
  });
}

function wrk(gw, seconds, dir) {
  const lua = path.join(dir, 'predict.lua');
  fs.writeFileSync(lua, `request = function()
  local uid = "wrk-" .. math.random(1, 100000000)
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json", ["X-User-Id"] = uid},
    '{"user_id":"' .. uid .. '","inputs":[[1,2]]}')
end
`);
  return new Promise((resolve, reject) => {
    execFile('wrk', ['-t2', '-c32', `-d${seconds}s`, '--timeout', '5s', '--latency', '-s', lua, gw.dataUrl + '/predict'],
      { timeout: (seconds + 30) * 1000 }, (err, stdout) => {
        if (err) return reject(err);
        const rps = Number((stdout.match(/Requests\/sec:\s+([\d.]+)/) || [])[1]);
        const p99s = (stdout.match(/\s99%\s+([\d.]+)(us|ms|s)/) || []);
        const p99 = Number(p99s[1]) * ({ us: 0.001, ms: 1, s: 1000 }[p99s[2]] || NaN);
        const non2xx = Number((stdout.match(/Non-2xx or 3xx responses: (\d+)/) || [0, 0])[1]);
        resolve({ rps, p99, non2xx });
      });
  });
}

async function main() {
  const [binary, store, portA, portB] = process.argv.slice(2);
  const trials = env('TRIALS', 20);
  const busyRps = env('BUSY_RPS', 50);
  const costS = env('COST_S', 15);
  const wrkS = env('WRK_S', 10);
  const rounds = env('ROUNDS', 2);
  const backend = store.startsWith('sqlite:') ? 'SQLite' : 'PostgreSQL';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'abgate-visibility-'));
  const gw = await startGateway(binary, store, portA, portB, dir);
  const pid = gw.child.pid;
  const viewers = [];
  const traffic = new Traffic(gw);
  try {
    console.log(`== ${backend}: ${store.replace(/\/\/[^@]*@/, '//')}; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
    let t = Date.now();
    const base = countsOf(await gw.get(`/api/v1/experiments/${EXPERIMENT}/results`));
    console.log(`first read (the follower builds its units): ${fmt((Date.now() - t) / 1000, 1)} s; ` +
      Object.entries(base).map(([a, c]) => `${a}: ${c.units} units, ${c.conv} conversions`).join('; '));

    // Time to visible, on a busy experiment with one, then five dashboards open (each one's
    // first refresh that shows the trial's events is a sample).
    const visibleBy = {};
    for (const k of [1, 5]) {
      const open = [...Array(k)].map(() => new Viewer(gw));
      for (const v of open) {
        v.start();
        await sleep(POLL_MS / k);  // pages opened at different moments poll out of phase
      }
      viewers.push(...open);
      traffic.busy(busyRps, (trials + 5) * 35000);
      const visible = [];
      const fromFirst = [];
      let timeouts = 0;
      for (let i = 0; i < trials; i++) {
        await sleep(Math.random() * POLL_MS);  // a random phase against the pages' polls
        const first = Date.now();
        await traffic.users(5);
        const acked = Date.now();
        const target = JSON.parse(JSON.stringify(traffic.acked));
        const seen = await Promise.all(open.map((viewer) => new Promise((resolve) => {
          const timer = setTimeout(() => { viewer.listeners.delete(check); resolve(null); }, 30000);
          const check = (report, at) => {
            const c = countsOf(report);
            for (const [arm, want] of Object.entries(target)) {
              const have = c[arm];
              if (!have || have.units < base[arm].units + want.units || have.conv < base[arm].conv + want.conv) return;
            }
            clearTimeout(timer);
            viewer.listeners.delete(check);
            resolve(at);
          };
          viewer.listeners.add(check);
        })));
        for (const at of seen) {
          if (at === null) { timeouts++; continue; }
          visible.push(at - acked);
          fromFirst.push(at - first);
        }
      }
      await traffic.stop();
      await Promise.all(open.map((v) => v.stop()));
      viewers.length = 0;
      const computations = await gw.metric('abgate_results_computations_total');
      const computeS = await gw.metric('abgate_results_compute_seconds_total');
      const lat = open.flatMap((v) => v.latencies);
      visibleBy[k] = visible;
      console.log(`time to visible with ${k} dashboard(s) open (outcomes acknowledged -> a dashboard refresh shows them), ` +
        `${trials} trials, ${visible.length} samples${timeouts ? `, ${timeouts} not visible within 30 s` : ''}, busy at ${busyRps} new users/s: ` +
        `p50 ${fmt(pct(visible, 0.5))} ms, p95 ${fmt(pct(visible, 0.95))} ms, max ${fmt(pct(visible, 1))} ms ` +
        `(from the first scoring request: p50 ${fmt(pct(fromFirst, 0.5))} ms, max ${fmt(pct(fromFirst, 1))} ms); ` +
        `refresh p50 ${fmt(pct(lat, 0.5))} ms, max ${fmt(pct(lat, 1))} ms, ${open.reduce((n, v) => n + v.errors, 0)} failed; ` +
        `${computations} analyses so far (the first read included), ${fmt(1000 * computeS / computations, 1)} ms each`);
    }
    const visible = visibleBy[1];

    // What open dashboards cost, on the busy experiment.
    const cost = { 0: [], 1: [], 5: [] };
    traffic.busy(busyRps, rounds * 3 * (costS + 5) * 1000 + 60000);
    for (let r = 0; r < rounds; r++) {
      for (const k of [0, 1, 5]) {
        const open = [...Array(k)].map(() => new Viewer(gw));
        open.forEach((v) => v.start());
        viewers.push(...open);
        await sleep(2000);
        const c0 = cpuSeconds(pid);
        const g0 = pgCpuSeconds();
        const a0 = await gw.metric('abgate_results_computations_total');
        const s0 = await gw.metric('abgate_results_compute_seconds_total');
        const p0 = open.reduce((n, v) => n + v.polls, 0);
        const t0 = Date.now();
        await sleep(costS * 1000);
        const wall = (Date.now() - t0) / 1000;
        const c1 = cpuSeconds(pid);
        const g1 = pgCpuSeconds();
        const a1 = await gw.metric('abgate_results_computations_total');
        const s1 = await gw.metric('abgate_results_compute_seconds_total');
        const polls = open.reduce((n, v) => n + v.polls, 0) - p0;
        await Promise.all(open.map((v) => v.stop()));
        viewers.length = 0;
        const lat = open.flatMap((v) => v.latencies);
        cost[k].push({ cpu: (c1 - c0) / wall, pg: (g1 - g0) / wall, analyses: a1 - a0, analysisS: s1 - s0, polls, wall, p50: pct(lat, 0.5) });
      }
    }
    await traffic.stop();
    const median = (k, f) => pct(cost[k].map(f), 0.5);
    const idle = median(0, (x) => x.cpu);
    for (const k of [0, 1, 5]) {
      const rows = cost[k];
      const polls = rows.reduce((n, x) => n + x.polls, 0);
      const wall = rows.reduce((n, x) => n + x.wall, 0);
      const analyses = rows.reduce((n, x) => n + x.analyses, 0);
      const analysisS = rows.reduce((n, x) => n + x.analysisS, 0);
      const extra = median(k, (x) => x.cpu) - idle;
      console.log(`${k} dashboard(s) open, busy at ${busyRps} new users/s: gateway CPU ` +
        `${rows.map((x) => x.cpu.toFixed(3)).join('/')} CPU-s/s over ${rounds} x ${costS} s` +
        (process.env.PG_POSTMASTER_PID ? `, PostgreSQL ${rows.map((x) => x.pg.toFixed(3)).join('/')} CPU-s/s` : '') +
        (k ? `, +${fmt(1000 * extra, 0)} ms/s over none; ${polls} refreshes, ${analyses} analyses ` +
          `(${fmt(1000 * analysisS / Math.max(analyses, 1), 1)} ms each, ${fmt(100 * analysisS / wall, 1)}% of the wall time), ` +
          `~${fmt(1000 * extra * wall / rounds / Math.max(polls / rounds, 1), 1)} ms CPU per refresh, refresh p50 ${fmt(median(k, (x) => x.p50))} ms` : ''));
    }

    // The data plane with and without 5 dashboards open.
    const plane = { without: [], with: [] };
    for (let r = 0; r < rounds; r++) {
      for (const k of r % 2 ? [5, 0] : [0, 5]) {
        const open = [...Array(k)].map(() => new Viewer(gw));
        open.forEach((v) => v.start());
        viewers.push(...open);
        if (k) await sleep(1500);
        const c0 = cpuSeconds(pid);
        const s0 = await gw.metric('abgate_results_compute_seconds_total');
        const run = await wrk(gw, wrkS, dir);
        run.cpuPerReqUs = 1e6 * (cpuSeconds(pid) - c0) / (run.rps * wrkS);
        run.analysisS = (await gw.metric('abgate_results_compute_seconds_total')) - s0;
        plane[k ? 'with' : 'without'].push(run);
        await Promise.all(open.map((v) => v.stop()));
        viewers.length = 0;
      }
    }
    const show = (rows) => rows.map((x) => `${fmt(x.rps)} req/s p99 ${fmt(x.p99, 1)} ms ${fmt(x.cpuPerReqUs, 1)} CPU-us/req` +
      `${x.analysisS ? ` (analyses ${fmt(100 * x.analysisS / wrkS, 1)}% of a core)` : ''}${x.non2xx ? ` (${x.non2xx} non-2xx)` : ''}`).join(', ');
    console.log(`scoring (wrk, 32 connections, ${wrkS} s): without dashboards ${show(plane.without)}; with 5 open ${show(plane.with)}; ` +
      `req/s ratio with/without ${fmt(pct(plane.with.map((x) => x.rps), 0.5) / pct(plane.without.map((x) => x.rps), 0.5), 2)}, ` +
      `p99 ratio ${fmt(pct(plane.with.map((x) => x.p99), 0.5) / pct(plane.without.map((x) => x.p99), 0.5), 2)}, ` +
      `CPU per request ratio ${fmt(pct(plane.with.map((x) => x.cpuPerReqUs), 0.5) / pct(plane.without.map((x) => x.cpuPerReqUs), 0.5), 2)}`);

    // The anchor, on the same store now (it grew by the runs above), against a fresh analysis.
    const anchors = [];
    for (let i = 0; i < 3; i++) anchors.push(await runAnchor(store));
    t = Date.now();
    const now = countsOf(await gw.get(`/api/v1/experiments/${EXPERIMENT}/results`));
    const fresh = Date.now() - t;
    const anchorS = pct(anchors.map((a) => a.seconds), 0.5);
    // Per refresh of one open dashboard: the gateway's extra CPU and, on PostgreSQL, the server's.
    const extra1 = median(1, (x) => x.cpu + x.pg) - median(0, (x) => x.cpu + x.pg);
    const perRefresh = cost[1].length ? 1000 * extra1 * costS / Math.max(1, median(1, (x) => x.polls)) : NaN;
    console.log(`anchor (${anchorCommand(store)[0]}: per-arm units and conversions over the whole store, what a SQL panel runs ` +
      `every refresh): ${anchors.map((a) => fmt(1000 * a.seconds)).join('/')} ms -> ${anchors[anchors.length - 1].rows}; ` +
      `abgate now: ${Object.entries(now).map(([a, c]) => `${a}|${c.units}|${c.conv}`).join(', ')} (a fresh results read ${fresh} ms)`);
    console.log(`ratios: anchor query / abgate time to visible p50 = ${fmt(1000 * anchorS / pct(visible, 0.5), 2)} ` +
      `(a panel shows new data at best one query after its refresh tick); abgate CPU per refresh of one dashboard ` +
      `${fmt(perRefresh, 1)} ms${process.env.PG_POSTMASTER_PID ? ' (gateway + PostgreSQL)' : ''}: anchor query time / that = ${fmt(1000 * anchorS / perRefresh, 0)}x`);
  } finally {
    await traffic.stop().catch(() => {});
    await Promise.all(viewers.map((v) => v.stop()));
    await gw.stop();
    if (gw.child.exitCode === null) console.error('abgate serve did not stop within 20 s');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
