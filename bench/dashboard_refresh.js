// What open dashboards cost a gateway, side by side: K viewers polling an experiment's results
// every second on a store of N exposures while light traffic keeps arriving,
//   anchor:    each poll asks for a fresh result (what every results read did before the
//              cache: one whole analysis per request, then on the admin thread),
//   dashboard: each poll sends max_age_ms=900, as the dashboard does,
// and, in each, how long an authenticated pause takes meanwhile. Loopback only; bounded in
// time. Usage: node bench/dashboard_refresh.js [build/abgate] [N=1000000] [K=5] [SECONDS=20]
'use strict';

const { execFileSync } = require('child_process');
const path = require('path');
const { startGateway } = require('../tests/dashboard/gateway_harness');

async function main() {
  const binary = process.argv[2] || path.join(__dirname, '../build/abgate');
  const n = Number(process.argv[3] || 1000000);
  const viewers = Number(process.argv[4] || 5);
  const seconds = Number(process.argv[5] || 20);
  const gw = await startGateway(binary);
  try {
    await gw.traffic(0, 100);
    // N exposures written behind the gateway's back (sqlite3 CLI): read as rows, the slow path.
    const db = path.join(gw.dir, 'events.db');
    const t0 = Date.now();
    execFileSync('sqlite3', [db, `PRAGMA busy_timeout=10000; WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < ${n - 1})
      INSERT INTO exposures (request_id, ts, experiment, unit_id, unit_random, arm, assigned_arm, model_name, model_version,
        routing_mode, status, latency_us, score, fallback, in_experiment)
      SELECT 'bulk' || i, 1700000000000000 + i, 'hyatt_booking_ab', 'bulk' || i, 0, CASE WHEN i % 5 = 0 THEN 'B' ELSE 'A' END,
        CASE WHEN i % 5 = 0 THEN 'B' ELSE 'A' END, 'hyatt_booking_model', CASE WHEN i % 5 = 0 THEN '8' ELSE '7' END,
        'user_hash', 200, 1000, 0.5, 0, 1 FROM k;`]);
    console.log(`store: ${n} exposures added in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${viewers} viewers, ${seconds} s per run`);
    const metric = async (name) => {
      const body = await (await fetch(gw.dataUrl + '/metrics')).text();
      const m = body.match(new RegExp('\\n' + name + ' ([0-9.e+-]+)\\n'));
      return m ? Number(m[1]) : 0;
    };
    let userBase = 1000;
    for (const [label, query] of [['anchor (fresh every poll)', ''], ['dashboard (max_age_ms=900)', '?max_age_ms=900']]) {
      const before = { analyses: await metric('abgate_results_computations_total'), cpu: await metric('abgate_results_compute_seconds_total') };
      const end = Date.now() + seconds * 1000;
      const latencies = [];
      let polls = 0;
      const viewer = async () => {
        while (Date.now() < end) {
          const started = Date.now();
          const r = await fetch(gw.adminUrl + '/api/v1/experiments/hyatt_booking_ab/results' + query, { headers: { Authorization: 'Bearer ' + gw.token } });
          await r.text();
          latencies.push(Date.now() - started);
          polls++;
          const wait = 1000 - (Date.now() - started);
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        }
      };
      const traffic = (async () => {
        while (Date.now() < end) {
          await gw.traffic(userBase, 10);
          userBase += 10;
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      })();
      const pauses = (async () => {
        const out = [];
        await new Promise((resolve) => setTimeout(resolve, seconds * 500));
        for (const verb of ['pause', 'resume']) {
          const started = Date.now();
          await gw.admin('POST', `/api/v1/experiments/hyatt_booking_ab/${verb}`, {});
          out.push(Date.now() - started);
        }
        return out;
      })();
      await Promise.all([...Array(viewers)].map(viewer));
      await traffic;
      const pauseMs = await pauses;
      const analyses = (await metric('abgate_results_computations_total')) - before.analyses;
      const cpu = (await metric('abgate_results_compute_seconds_total')) - before.cpu;
      latencies.sort((a, b) => a - b);
      console.log(`${label}: ${polls} polls, ${analyses} analyses (${(cpu / analyses).toFixed(2)} s each), ` +
        `analysis time ${(100 * cpu / seconds).toFixed(0)}% of the wall time, poll p50 ${latencies[latencies.length >> 1]} ms, ` +
        `pause/resume meanwhile ${pauseMs.join('/')} ms`);
    }
  } finally {
    await gw.stop();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
