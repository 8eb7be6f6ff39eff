// A third-party client against `abgate registry`: the npm package `mlflow` (an MLflow REST client
// for Node.js, https://github.com/Yuhsak/mlflow) drives experiments, runs, params, metrics, tags,
// history, search and artifact listing. Usage: node mlflow_client_test.js /path/to/abgate
//
// The package prints every request body with console.log; that output is silenced here so a
// failure's message is what remains on screen.
'use strict';

const assert = require('assert');
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');

const MLflow = require('mlflow');
const { ViewType } = require('mlflow/enum');

function startRegistry(binary, dir) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['registry', '--store', `sqlite:${path.join(dir, 'r.db')}`,
      '--artifacts', path.join(dir, 'artifacts'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const timer = setTimeout(() => reject(new Error('abgate registry did not start in 10 s')), 10000);
    readline.createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      const m = line.match(/listening (http:\/\/[\d.]+:\d+)/);
      if (!m) reject(new Error(`unexpected readiness line: ${line}`));
      else resolve({ child, endpoint: m[1] });
    });
    child.once('exit', (code) => reject(new Error(`abgate registry exited with ${code}`)));
  });
}

// Rejections carry JSON.stringify({status, statusText, data}) inside the Error message.
async function expectError(promise, status, errorCode) {
  try {
    await promise;
  } catch (e) {
    const text = String(e.message).replace(/^Error: /, '');
    const info = JSON.parse(text);
    assert.strictEqual(info.status, status, text);
    assert.strictEqual(info.data.error_code, errorCode, text);
    return;
  }
  assert.fail(`expected HTTP ${status} ${errorCode}`);
}

async function main() {
  const binary = process.argv[2];
  assert.ok(binary, 'usage: node mlflow_client_test.js ABGATE_BINARY');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'abgate-npm-'));
  const { child, endpoint } = await startRegistry(binary, dir);
  const log = console.log;
  console.log = () => {};
  try {
    const { Experiments, Runs, Metrics, Artifacts } = new MLflow({ endpoint });

    // Experiments.
    const { experiment_id } = await Experiments.create({ name: 'hyatt_booking_ab' });
    assert.strictEqual(experiment_id, '1');
    const { experiment } = await Experiments.get({ experiment_id });
    assert.strictEqual(experiment.name, 'hyatt_booking_ab');
    assert.strictEqual(experiment.artifact_location, 'mlflow-artifacts:/1');
    await expectError(Experiments.create({ name: 'hyatt_booking_ab' }), 400, 'RESOURCE_ALREADY_EXISTS');
    await expectError(Experiments.get({ experiment_id: '424242' }), 404, 'RESOURCE_DOES_NOT_EXIST');
    await Experiments.update({ experiment_id, new_name: 'hyatt_booking_ab_v2' });
    assert.strictEqual((await Experiments.get({ experiment_id })).experiment.name, 'hyatt_booking_ab_v2');

    // One run per arm, as the controller logs them.
    const runIds = {};
    for (const arm of ['A', 'B']) {
      const { run } = await Runs.create({ experiment_id, start_time: Date.now(),
        tags: [{ key: 'ab_test', value: 'hyatt_booking_ab' }, { key: 'arm', value: arm }] });
      assert.strictEqual(run.info.status, 'RUNNING');
      assert.strictEqual(run.info.experiment_id, experiment_id);
      runIds[arm] = run.info.run_id;
      await Runs.logParameter({ run_id: run.info.run_id, key: 'model_version', value: arm === 'A' ? '7' : '8' });
      await Runs.setTag({ run_id: run.info.run_id, key: 'routing_mode', value: 'user_hash' });
      for (let step = 0; step < 3; step++) {
        await Runs.logMetric({ run_id: run.info.run_id, key: 'conversion', value: 0.1 + step / 100 + (arm === 'B' ? 0.02 : 0),
          timestamp: 1795690821663 + step, step });
      }
    }
    await Runs.logBatch({ run_id: runIds.B,
      metrics: [{ key: 'auc', value: 0.74, timestamp: 1795690821700, step: 0 }],
      params: [{ key: 'arm', value: 'B' }], tags: [{ key: 'evaluated', value: 'true' }] });
    await expectError(Runs.logParameter({ run_id: runIds.A, key: 'model_version', value: '9' }), 400,
      'INVALID_PARAMETER_VALUE');
    await expectError(Runs.logMetric({ run_id: runIds.A, key: 'x', value: 1 }), 400, 'INVALID_PARAMETER_VALUE');
    await expectError(Runs.get({ run_id: 'nope' }), 404, 'RESOURCE_DOES_NOT_EXIST');

    const { run: b } = await Runs.get({ run_id: runIds.B });
    const metric = (key) => b.data.metrics.find((m) => m.key === key);
    assert.strictEqual(metric('conversion').value, 0.14);
    assert.strictEqual(metric('conversion').step, 2);
    assert.strictEqual(metric('auc').value, 0.74);
    assert.deepStrictEqual(b.data.params.map((p) => p.key).sort(), ['arm', 'model_version']);

    const { metrics } = await Metrics.getHistory({ run_id: runIds.A, metric_key: 'conversion' });
    assert.deepStrictEqual(metrics.map((m) => m.step), [0, 1, 2]);
    assert.deepStrictEqual(await Metrics.getHistory({ run_id: runIds.A, metric_key: 'unknown' }), {});

    // Search, as `search_runs` with tags.ab_test finds the arms of an experiment.
    const found = await Runs.search({ experiment_ids: [experiment_id],
      filter: "tags.ab_test = 'hyatt_booking_ab' AND params.model_version = '8'", run_view_type: ViewType.ACTIVE_ONLY });
    assert.strictEqual(found.runs.length, 1);
    assert.strictEqual(found.runs[0].info.run_id, runIds.B);
    const ordered = await Runs.search({ experiment_ids: [experiment_id], order_by: ['metrics.conversion DESC'] });
    assert.deepStrictEqual(ordered.runs.map((r) => r.info.run_id), [runIds.B, runIds.A]);
    await expectError(Runs.search({ experiment_ids: [experiment_id], filter: "params.a = 'x' OR 1=1" }), 400,
      'INVALID_PARAMETER_VALUE');

    // Finish, delete, restore; artifacts of a run with none.
    const { run_info } = await Runs.update({ run_id: runIds.A, status: 'FINISHED', end_time: Date.now() });
    assert.strictEqual(run_info.status, 'FINISHED');
    await Runs.delete({ run_id: runIds.A });
    const active = await Runs.search({ experiment_ids: [experiment_id], run_view_type: ViewType.ACTIVE_ONLY });
    assert.strictEqual(active.runs.length, 1);
    await Runs.restore({ run_id: runIds.A });
    await Runs.deleteTag({ run_id: runIds.A, key: 'routing_mode' });
    const listing = await Artifacts.list({ run_id: runIds.A });
    assert.strictEqual(listing.root_uri, `mlflow-artifacts:/1/${runIds.A}/artifacts`);
    await Experiments.delete({ experiment_id });
    assert.strictEqual((await Experiments.get({ experiment_id })).experiment.lifecycle_stage, 'deleted');
    await Experiments.restore({ experiment_id });
  } finally {
    console.log = log;
    child.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log('npm mlflow client against abgate registry: OK');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
