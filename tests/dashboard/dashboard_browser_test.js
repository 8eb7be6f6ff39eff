// The dashboard in a real browser: Debian's chromium (headless, driven by puppeteer-core) opens
// /dashboard#token=… on a real `abgate serve` with traffic and outcomes, and checks what a data
// scientist relies on: the experiment, arms, model versions and unit counts (the same numbers as
// GET …/results), the charts, that new traffic appears without a reload, that pause works after
// its confirmation, and that the console stays free of errors. Saves a screenshot.
// Usage: node dashboard_browser_test.js ABGATE_BINARY [SCREENSHOT.png [README_PICTURE.png]]
// (the README's docs/dashboard.png is README_PICTURE.png made small: `pngquant --quality=80-95
// --strip` then `optipng -o5`, ~50 KB instead of ~160 KB).
'use strict';

const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const puppeteer = require('puppeteer-core');
const { startGateway, waitFor } = require('./gateway_harness');

const CHROMIUM = process.env.ABGATE_CHROMIUM || '/usr/bin/chromium';

async function main() {
  const binary = process.argv[2];
  const screenshot = process.argv[3] || path.join(os.tmpdir(), 'abgate-dashboard.png');
  assert.ok(binary, 'usage: node dashboard_browser_test.js ABGATE_BINARY [SCREENSHOT.png]');
  const gw = await startGateway(binary);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'abgate-chromium-'));
  let browser, page;
  const problems = [];
  try {
    await gw.traffic(0, 400);

    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir: profile,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--window-size=1360,1000'],
      defaultViewport: { width: 1360, height: 1000 },
    });
    page = await browser.newPage();
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warn') problems.push(`console ${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure() && r.failure().errorText}`));
    page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`); });

    // The list, reached with the token in the fragment; the token leaves the address bar at once.
    await page.goto(`${gw.adminUrl}/dashboard#token=${gw.token}`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('#experiments tr[data-experiment="hyatt_booking_ab"]', { timeout: 15000 });
    assert.ok(!page.url().includes('token'), 'the token is still in the address bar: ' + page.url());
    assert.strictEqual(await page.evaluate(() => sessionStorage.getItem('abgate.token')), gw.token);
    await page.screenshot({ path: screenshot.replace(/\.png$/, '') + '-list.png' });
    const listRow = await page.$eval('#experiments tr[data-experiment="hyatt_booking_ab"]', (tr) => tr.innerText);
    for (const want of ['running', 'user_hash', 'A 80%', 'B 20%', 'ok']) assert.ok(listRow.includes(want), `list row lacks "${want}": ${listRow}`);

    // The experiment's page: arms, versions and units exactly as the results endpoint has them.
    await page.click('#experiments a.exp-link');
    await page.waitForSelector('#arms tr[data-arm="B"]', { timeout: 15000 });
    const report = await gw.admin('GET', '/api/v1/experiments/hyatt_booking_ab/results');
    const arms = await page.$$eval('#arms tbody tr', (rows) => rows.map((r) => ({
      arm: r.getAttribute('data-arm'),
      version: r.querySelector('.version').textContent,
      units: Number(r.querySelector('.arm-units').textContent.replace(/,/g, '')),
    })));
    assert.deepStrictEqual(arms, report.arms.map((a) => ({ arm: a.arm, version: a.model_version, units: a.units })));
    assert.strictEqual(arms.reduce((n, a) => n + a.units, 0), 400);
    assert.deepStrictEqual(arms.map((a) => a.version), ['7', '8']);
    // Rounded for people as the text report rounds it: the lift to 3 significant digits.
    const primary = report.comparisons.find((c) => c.metric === 'booked' && typeof c.lift === 'number');
    const comparisons = await page.$eval('#comparisons', (t) => t.innerText);
    const shown = (primary.lift > 0 ? '+' : '') + Number((primary.lift * 100).toPrecision(3)) + '%';
    assert.ok(comparisons.includes(shown), `comparisons lack the lift ${shown}: ${comparisons}`);
    // Revenue is CUPED-adjusted by last year's revenue: the row says so, with the raw numbers.
    const revenue = report.comparisons.find((c) => c.metric === 'revenue');
    assert.ok(revenue.cuped && revenue.cuped.applied, `revenue not adjusted: ${JSON.stringify(revenue)}`);
    assert.ok(comparisons.includes('CUPED on pre_revenue: variance'), `comparisons lack the CUPED note: ${comparisons}`);
    // Charts drawn.
    // The traffic split comes from its own endpoint (…/traffic), polled apart from the results:
    // wait for it with a deadline rather than asserting at once.
    await page.waitForFunction(() => document.querySelectorAll('#traffic-chart rect.bar').length >= 2, { timeout: 10000 })
      .catch(() => {});
    assert.ok((await page.$$('#traffic-chart rect.bar')).length >= 2, 'no bars in the traffic split');
    assert.ok(await page.$('#lift-chart polyline.lift-line'), 'no lift line');
    assert.ok(await page.$('#lift-chart polygon.band'), 'no confidence band');
    assert.ok((await page.$eval('#health', (t) => t.innerText)).includes('ok'), 'no guardrail status');
    await page.screenshot({ path: screenshot, fullPage: true });
    // The README's picture (docs/dashboard.png): the first screen only, to stay small, cut below
    // the card of the comparisons so that no section is cut in half.
    if (process.argv[4]) {
      const bottom = await page.$eval('#comparisons', (t) => t.closest('section').getBoundingClientRect().bottom + window.scrollY);
      await page.screenshot({ path: process.argv[4], clip: { x: 0, y: 0, width: 1360, height: Math.ceil(bottom) + 8 } });
    }

    // New traffic shows up without a reload.
    const sent = Date.now();
    await gw.traffic(400, 60);
    const units = () => page.$$eval('#arms .arm-units', (c) => c.reduce((n, x) => n + Number(x.textContent.replace(/,/g, '')), 0));
    await waitFor('460 units on the page', async () => (await units()) === 460, 15000);
    const latency = Date.now() - sent;

    // Pause, after the confirmation that says what it does.
    await page.click('#action-pause');
    await page.waitForSelector('dialog#confirm[open]');
    const text = await page.$eval('#confirm-body', (d) => d.innerText);
    assert.ok(/served by the control arm A/.test(text), 'the confirmation does not state the consequence: ' + text);
    await page.click('#confirm-ok');
    await waitFor('the paused state on the page', () => page.$eval('.head .title', (t) => t.innerText.includes('paused')), 10000);
    assert.strictEqual((await gw.admin('GET', '/api/v1/experiments/hyatt_booking_ab')).state, 'paused');
    await waitFor('the pause in the audit trail', () => page.$eval('#audit', (t) => /\bpause\b/.test(t.innerText)), 10000);
    assert.ok(await page.$('#action-resume'), 'no resume button once paused');

    // A ramp step: B from 20% to 50%, after a confirmation naming the shares.
    await page.click('#action-ramp');
    await page.waitForSelector('dialog#confirm[open] #ramp-percent');
    await page.select('#ramp-percent', '50');
    const rampText = await page.$eval('#confirm-body', (d) => d.innerText);
    assert.ok(/B \(version 8\) goes from 20% to 50%/.test(rampText), 'the ramp confirmation: ' + rampText);
    await page.click('#confirm-ok');
    await waitFor('weights 50/50 in the gateway', async () => {
      const e = await gw.admin('GET', '/api/v1/experiments/hyatt_booking_ab');
      return e.arms[0].weight === 50 && e.arms[1].weight === 50;
    }, 10000);
    await waitFor('the weights change in the audit trail', () => page.$eval('#audit', (t) => /weights 80\/20 → 50\/50/.test(t.innerText)), 10000);

    assert.deepStrictEqual(problems, [], 'console errors or failed requests');

    // Without a token in the URL (a new tab: sessionStorage is per tab) the page asks for it.
    const asking = await browser.newPage();
    const errors = [];
    asking.on('pageerror', (e) => errors.push(e.message));
    await asking.goto(`${gw.adminUrl}/dashboard`, { waitUntil: 'domcontentloaded' });
    await asking.waitForSelector('#login:not([hidden])', { timeout: 10000 });
    await asking.type('#token', 'wrong-token');
    await asking.click('#login-form button');
    await waitFor('the refusal', () => asking.$eval('#login-error', (p) => p.textContent.includes('refused')), 10000);
    await asking.type('#token', gw.token);
    await asking.click('#login-form button');
    await asking.waitForSelector('#experiments tr[data-experiment="hyatt_booking_ab"]', { timeout: 10000 });
    assert.deepStrictEqual(errors, []);
    console.log(`dashboard browser test: ok (new traffic on the page ${latency} ms after it was sent; screenshot ${screenshot})`);
  } catch (e) {
    // What the page showed and said, to see why.
    if (page) await page.screenshot({ path: screenshot.replace(/\.png$/, '') + '-failed.png', fullPage: true }).catch(() => {});
    console.error('page problems so far:', problems);
    throw e;
  } finally {
    if (browser) await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
    await gw.stop();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
