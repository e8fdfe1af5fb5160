// The `kiln ui` browser test (CTest track_ui_browser): two short real training runs
// (examples/track_mnist on MNIST digits), a registered and promoted model, `kiln ui` on a free
// loopback port, and Debian's headless Chromium driven by playwright-core (npm, installed with
// --ignore-scripts; its own browser download is not used). Checks that the runs table lists both
// runs and sorts and filters, that a run page draws one point per logged epoch, that compare
// overlays one curve per run, that the registry shows the stage, and that `kiln runs report`
// writes one self-contained file with the same views. Screenshots go to OUT/screenshots.
//
//   node tests/track/ui_browser_test.js KILN TRACK_MNIST OUT
'use strict';
const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const assert = require('assert');

const [kiln, trainer, out] = process.argv.slice(2);
if (!kiln || !trainer || !out) {
  console.error('usage: node ui_browser_test.js KILN TRACK_MNIST OUT');
  process.exit(2);
}
const root = path.resolve(__dirname, '..', '..');
const { chromium } = require(path.join(root, 'node_modules', 'playwright-core'));
const store = path.join(out, 'kiln-runs');
const shots = path.join(out, 'screenshots');
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(shots, { recursive: true });

let checks = 0;
function check(cond, what) {
  assert.ok(cond, what);
  checks += 1;
  console.log('ok ' + checks + ' - ' + what);
}

function run(exe, args) {
  return execFileSync(exe, args, {
    encoding: 'utf8',
    env: Object.assign({}, process.env, { OPENBLAS_CORETYPE: 'Haswell' }),
  });
}

// Starts `kiln ui --port 0` and resolves with the URL it prints once it listens.
function startUi() {
  const ui = spawn(kiln, ['--track', store, 'ui', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error('kiln ui did not start: ' + seen)), 20000);
    ui.stdout.on('data', (d) => {
      seen += d;
      const m = /on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(seen);
      if (m) {
        clearTimeout(timer);
        resolve({ ui, url: m[1] });
      }
    });
    ui.stderr.on('data', (d) => { seen += d; });
    ui.on('exit', (code) => reject(new Error('kiln ui exited with ' + code + ': ' + seen)));
  });
}

async function main() {
  // Two real runs with different settings (4 and 3 epochs, so the point counts differ).
  const epochs = { a: 4, b: 3 };
  run(trainer, ['--track', store, '--rows', '1500', '--epochs', String(epochs.a), '--lr', '2e-3',
                '--units', '64', '--name', 'small lr 2e-3']);
  run(trainer, ['--track', store, '--rows', '1500', '--epochs', String(epochs.b), '--lr', '1e-3',
                '--units', '128', '--name', 'wide lr 1e-3']);
  const listed = JSON.parse(run(kiln, ['--track', store, 'runs', 'list', '--json']));
  check(listed.length === 2, 'kiln runs list --json lists the two runs');
  const a = listed.find((r) => r.name === 'small lr 2e-3');
  const b = listed.find((r) => r.name === 'wide lr 1e-3');
  const history = {};
  for (const r of [a, b]) {
    history[r.id] = JSON.parse(run(kiln, ['--track', store, 'runs', 'show', r.id, '--json'])).history;
  }
  check(history[a.id].loss.length === epochs.a && history[b.id].loss.length === epochs.b,
        'each run logged one loss per epoch');
  run(kiln, ['--track', store, 'models', 'register', a.id, '--name', 'digits']);
  run(kiln, ['--track', store, 'models', 'register', b.id, '--name', 'digits']);
  run(kiln, ['--track', store, 'models', 'promote', 'digits', '2', '--stage', 'production']);

  const { ui, url } = await startUi();
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const external = [];
    page.on('request', (req) => {
      if (!req.url().startsWith(url) && !req.url().startsWith('data:')) external.push(req.url());
    });

    // The runs table: both runs, sorting by a metric column, the server-side filter.
    await page.goto(url);
    const ids = await page.$$eval('#runs tbody tr', (rows) => rows.map((r) => r.dataset.run));
    check(ids.length === 2 && ids.includes(a.id) && ids.includes(b.id),
          'the runs table lists both runs');
    await page.screenshot({ path: path.join(shots, 'runs.png'), fullPage: true });
    const header = page.locator('#runs thead th', { hasText: /^val_accuracy$/ });
    const firstRun = () => page.$eval('#runs tbody tr', (r) => r.dataset.run);
    const lowFirst = a.metrics.val_accuracy <= b.metrics.val_accuracy ? a.id : b.id;
    const highFirst = lowFirst === a.id ? b.id : a.id;
    await header.click();
    check((await firstRun()) === lowFirst, 'clicking val_accuracy sorts ascending');
    await header.click();
    check((await firstRun()) === highFirst, 'clicking it again sorts descending');
    await page.fill('#filter', 'params.units = 64');
    await Promise.all([page.waitForNavigation(), page.click('form.toolbar button[type=submit]')]);
    const filtered = await page.$$eval('#runs tbody tr', (rows) => rows.map((r) => r.dataset.run));
    check(filtered.length === 1 && filtered[0] === a.id, 'the filter params.units = 64 keeps one run');
    await page.fill('#filter', 'metrics.val_accuracy >');
    await Promise.all([page.waitForNavigation(), page.click('form.toolbar button[type=submit]')]);
    check((await page.textContent('.error')).includes('has no value'),
          'a malformed filter shows its error');

    // A run page: one point per logged epoch in the loss chart, for training and validation.
    for (const r of [a, b]) {
      await page.goto(url + 'run/' + r.id);
      const n = await page.$$eval('svg.chart[data-title="loss"] g.points[data-key="loss"] circle.pt',
                                  (c) => c.length);
      const nv = await page.$$eval(
          'svg.chart[data-title="loss"] g.points[data-key="val_loss"] circle.pt', (c) => c.length);
      check(n === history[r.id].loss.length && nv === history[r.id].val_loss.length,
            `run ${r.id}: the loss chart has ${n} + ${nv} points for ${history[r.id].loss.length} epochs`);
    }
    await page.goto(url + 'run/' + a.id);
    check((await page.$$('table.cm td')).length === 100, 'the run page shows the 10x10 confusion matrix');
    await page.screenshot({ path: path.join(shots, 'run.png'), fullPage: true });

    // Compare: tick both runs, press Compare, one curve per run in each chart.
    await page.goto(url);
    await page.check(`#runs input.pick[value="${a.id}"]`);
    await page.check(`#runs input.pick[value="${b.id}"]`);
    await Promise.all([page.waitForNavigation(), page.click('#compare-selected')]);
    check(page.url().includes('/compare?runs='), 'Compare opens the compare view');
    const curves = await page.$$eval('svg.chart[data-title="val_loss"] polyline.series',
                                     (ls) => ls.map((l) => l.dataset.run));
    check(curves.length === 2 && curves.includes(a.id) && curves.includes(b.id),
          'the compare view overlays both runs\' val_loss curves');
    const pts = await page.$$eval('svg.chart[data-title="loss"] g.points',
                                  (gs) => gs.map((g) => g.querySelectorAll('circle.pt').length));
    check(pts.sort().join(',') === [epochs.b, epochs.a].sort().join(','),
          'each compared curve has its run\'s epochs');
    await page.screenshot({ path: path.join(shots, 'compare.png'), fullPage: true });

    // The registry.
    await page.goto(url + 'models');
    const stages = await page.$$eval('#registry tbody tr', (rows) => rows.map((r) => r.textContent));
    check(stages.length === 2 && stages.some((t) => t.includes('production') && t.includes(b.id)),
          'the registry shows version 2 (run ' + b.id + ') in production');
    await page.screenshot({ path: path.join(shots, 'models.png'), fullPage: true });
    check(external.length === 0, 'no request left the server: ' + external.join(' '));

    // `kiln runs report`: one file with the same views, working offline.
    const report = path.join(out, 'report.html');
    run(kiln, ['--track', store, 'runs', 'report', a.id, b.id, '--out', report]);
    await page.goto('file://' + report);
    check((await page.$$('section.run')).length === 2 &&
          (await page.$$('#compare svg.chart[data-title="val_loss"] polyline.series')).length === 2,
          'the report holds both runs and the compare view');
    await page.screenshot({ path: path.join(shots, 'report.png') });
  } finally {
    await browser.close();
    ui.kill('SIGTERM');
  }
  console.log(`${checks} passed, 0 failed`);
}

main().catch((e) => {
  console.error('FAILED: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
