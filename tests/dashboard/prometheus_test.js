// The monitoring stack people already run: Debian's real `prometheus` scrapes a real `abgate
// serve` (loopback, a free port, a temp dir) and a per-arm request rate is read back through
// Prometheus' HTTP query API; `promtool check metrics` accepts /metrics as it is.
// Usage: node prometheus_test.js ABGATE_BINARY
'use strict';

const assert = require('assert');
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { startGateway, freePort, waitFor } = require('./gateway_harness');

const PROMETHEUS = process.env.ABGATE_PROMETHEUS || '/usr/bin/prometheus';
const PROMTOOL = process.env.ABGATE_PROMTOOL || '/usr/bin/promtool';

async function main() {
  const binary = process.argv[2];
  assert.ok(binary, 'usage: node prometheus_test.js ABGATE_BINARY');
  const gw = await startGateway(binary);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'abgate-prom-'));
  let prom;
  let promLog = '';
  try {
    await gw.traffic(0, 200);

    // promtool's linter on /metrics as served.
    const metrics = await (await fetch(gw.dataUrl + '/metrics')).text();
    for (const want of ['abgate_request_duration_seconds_bucket{experiment="hyatt_booking_ab",arm="B",backend="upstream"',
      'abgate_arm_info{experiment="hyatt_booking_ab",arm="A",backend="upstream"} 1', 'fallback="false"']) {
      assert.ok(metrics.includes(want), `/metrics lacks ${want}`);
    }
    const lint = spawnSync(PROMTOOL, ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
    assert.strictEqual(lint.status, 0, `promtool check metrics failed:\n${lint.stdout}${lint.stderr}`);
    const example = spawnSync(PROMTOOL, ['check', 'config', path.join(__dirname, '../../examples/prometheus.yml')], { encoding: 'utf8' });
    assert.strictEqual(example.status, 0, `examples/prometheus.yml:\n${example.stdout}${example.stderr}`);

    // Prometheus scraping the gateway every second, as examples/prometheus.yml does every 15 s.
    const port = await freePort();
    const target = gw.dataUrl.replace('http://', '');
    fs.writeFileSync(path.join(dir, 'prometheus.yml'),
      `global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n  - job_name: abgate\n    static_configs:\n      - targets: ['${target}']\n`);
    prom = spawn(PROMETHEUS, [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    prom.stderr.on('data', (d) => { promLog = (promLog + d).slice(-4000); });
    const exited = new Promise((resolve) => prom.once('exit', resolve));
    const query = async (q) => {
      const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = await r.json();
      assert.strictEqual(body.status, 'success', JSON.stringify(body));
      return body.data.result;
    };
    // Keep traffic flowing while Prometheus starts and takes a few scrapes (its first scrape
    // comes some 5 s after start): bounded in time and in count.
    let stop = false;
    const sending = (async () => {
      const deadline = Date.now() + 70000;
      for (let i = 1000; !stop && i < 200000 && Date.now() < deadline; i += 10) await gw.traffic(i, 10);
    })();
    let rates;
    try {
      rates = await waitFor('a per-arm request rate in Prometheus', async () => {
        const result = await query('sum by (arm) (rate(abgate_requests_total{experiment="hyatt_booking_ab",fallback="false"}[5s]))');
        const byArm = Object.fromEntries(result.map((s) => [s.metric.arm, Number(s.value[1])]));
        return byArm.A > 0 && byArm.B > 0 ? byArm : null;
      }, 60000);
    } finally {
      stop = true;
      await sending;
    }
    // Every query of the shipped Grafana dashboard is valid PromQL here, and the main ones
    // have data.
    const grafana = JSON.parse(fs.readFileSync(path.join(__dirname, '../../examples/grafana/abgate-dashboard.json'), 'utf8'));
    for (const panel of grafana.panels) {
      for (const t of panel.targets) {
        const result = await query(t.expr.replace(/\$__rate_interval/g, '5s').replace(/\$experiment/g, '.*'));
        if (panel.id === 1 && t.refId === 'A') assert.ok(result.length >= 2, `no data for "${panel.title}"`);
      }
    }
    // The end-to-end histogram gives a quantile per arm too.
    const p99 = await query('histogram_quantile(0.99, sum by (arm, le) (rate(abgate_request_duration_seconds_bucket[5s])))');
    assert.ok(p99.length >= 1, 'no latency quantile from Prometheus');
    prom.kill('SIGTERM');
    await exited;
    prom = null;
    console.log(`prometheus test: ok (request rate per arm from Prometheus: ${JSON.stringify(rates)})`);
  } catch (e) {
    console.error('prometheus log tail:\n' + promLog);
    throw e;
  } finally {
    if (prom && prom.exitCode === null) {
      const exited = new Promise((resolve) => prom.once('exit', resolve));
      prom.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
    await gw.stop();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
