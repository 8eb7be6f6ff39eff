// Test harness shared by the dashboard's browser test and the Prometheus test: two model
// stand-ins (Node HTTP servers on loopback port 0), a real `abgate serve` on port 0 with a
// temp-dir SQLite store, and bounded traffic with outcomes. Everything started here is stopped
// by stop(), by the handle it was started with.
'use strict';

const assert = require('assert');
const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');
const readline = require('readline');

const TOKEN = 'dashboard-test-token';

// A model stand-in answering MLflow's reply shape with a fixed score.
function startModel(score) {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ predictions: [score] }));
      });
    });
    server.keepAliveTimeout = 60000;
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

// A free loopback port (for servers that cannot report the one they bound).
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Starts `abgate serve --config configPath` with `env` added to this process' environment and
// waits (at most timeoutMs) for the line that names its ports. stderr() gives its last 4 kB.
async function spawnServe(binary, configPath, env, timeoutMs) {
  const child = spawn(binary, ['serve', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const ports = await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`abgate serve did not start in ${timeoutMs / 1000} s\n` + stderr)), timeoutMs);
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const m = line.match(/listening data=[\d.]+:(\d+) admin=[\d.]+:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ data: Number(m[1]), admin: Number(m[2]) });
      }
    });
    child.once('exit', (code) => reject(new Error(`abgate serve exited with ${code}\n${stderr}`)));
  });
  return { child, stderr: () => stderr, ports };
}

async function startGateway(binary, options = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'abgate-dash-'));
  const models = [await startModel(0.3), await startModel(0.6)];
  const weights = options.weights || [80, 20];
  const yaml = `server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  admin_token_env: ABGATE_DASHBOARD_TEST_TOKEN
  threads: 2
events:
  store: 'sqlite:${path.join(dir, 'events.db')}'
  flush_ms: 20
experiments:
  - name: hyatt_booking_ab
    model: hyatt_booking_model
    default: true
    control: A
    arms:
      - {name: A, version: '7', weight: ${weights[0]}, upstream: 'http://127.0.0.1:${models[0].address().port}/invocations'}
      - {name: B, version: '8', weight: ${weights[1]}, upstream: 'http://127.0.0.1:${models[1].address().port}/invocations'}
    metrics:
      - {name: booked, type: binary, primary: true}
      - {name: revenue, type: continuous, cuped: {covariate: pre_revenue}}
    guardrails: {max_error_rate: 0.02, max_p99_latency_ms: 250}
`;
  fs.writeFileSync(path.join(dir, 'gateway.yaml'), yaml);
  const { child, stderr, ports } = await spawnServe(binary, path.join(dir, 'gateway.yaml'),
    { ABGATE_DASHBOARD_TEST_TOKEN: TOKEN }, 20000);
  const gw = {
    dir, models, child, token: TOKEN,
    dataUrl: `http://127.0.0.1:${ports.data}`,
    adminUrl: `http://127.0.0.1:${ports.admin}`,
    stderr,
  };
  gw.admin = async (method, p, body) => {
    const r = await fetch(gw.adminUrl + p, {
      method,
      headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    assert.ok(r.ok, `${method} ${p}: HTTP ${r.status} ${text}`);
    return JSON.parse(text);
  };
  // `n` users u<from>…: one prediction each; about a third book (B's users a little more often,
  // deterministic by user number), with revenue; each user's revenue of last year (stamped a
  // year ago: before the exposure) is the CUPED covariate.
  gw.traffic = async (from, n) => {
    const lines = [];
    for (let i = from; i < from + n; i++) {
      const r = await fetch(gw.dataUrl + '/predict', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ user_id: 'u' + i, inputs: [[1, 2]] }),
      });
      const text = await r.text();
      assert.strictEqual(r.status, 200, text);
      const reply = JSON.parse(text);
      const threshold = reply.model_group === 'B' ? 45 : 30;
      lines.push(JSON.stringify({ experiment: 'hyatt_booking_ab', unit_id: 'u' + i, metric: 'pre_revenue', value: 80 + (i % 50) + (i % 7),
        ts: Math.floor(Date.now() / 1000) - 365 * 86400 }));
      if ((i * 37) % 100 < threshold) {
        lines.push(JSON.stringify({ experiment: 'hyatt_booking_ab', request_id: reply.request_id, metric: 'booked', value: 1 }));
        lines.push(JSON.stringify({ experiment: 'hyatt_booking_ab', request_id: reply.request_id, metric: 'revenue', value: 100 + (i % 50) }));
      }
    }
    for (let i = 0; i < lines.length; i += 1000) {
      const r = await fetch(gw.dataUrl + '/outcomes', {
        method: 'POST', headers: { 'Content-Type': 'application/x-ndjson' }, body: lines.slice(i, i + 1000).join('\n'),
      });
      assert.strictEqual(r.status, 200, await r.text());
    }
  };
  gw.stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    for (const m of models) {
      m.closeAllConnections();
      await new Promise((resolve) => m.close(resolve));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return gw;
}

// Polls `check` (async, returns a value or a falsy one) until truthy or the deadline passes.
async function waitFor(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

module.exports = { startGateway, spawnServe, freePort, waitFor, TOKEN };
