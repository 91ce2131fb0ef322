// The page end to end in headless Chromium on its WebGPU adapter: load the served dataset, train one
// epoch, read the test accuracy (>= 0.83), predict a photo, download the model and check it with the
// CLI (`fmnist evaluate` gives the page's accuracy, `fmnist predict` its class), then load a model the
// CLI trained and check the page scores it as the CLI does, and stop a run with Stop. Without WebGPU,
// and with a bad data or model file, the page shows an error line naming it. All by keyboard. Saves a
// screenshot and a JSON summary.
//
// Environment: FMNIST (the CLI binary, default target/release/fmnist), CHROMIUM (default
// /usr/bin/chromium), E2E_OUT (where the screenshot, the model and summary.json go, default
// web/e2e/out), E2E_EPOCHS (default 1). Run from the repository root after `make web-build`.

import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import puppeteer from 'puppeteer-core';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const out = path.resolve(process.env.E2E_OUT ?? path.join(root, 'web/e2e/out'));
const fmnist = path.resolve(root, process.env.FMNIST ?? 'target/release/fmnist');
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
const epochs = Number(process.env.E2E_EPOCHS ?? 1);
const photo = path.join(root, 'assets/samples/test-0-ankle-boot.png');
const MIN_ACCURACY = 0.83;
const MINUTE = 60_000;

const failures = [];
function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
}

/** Python's static server (what `make web` runs) on a free port of 127.0.0.1 (a secure context). */
function serve() {
  return new Promise((resolve, reject) => {
    const server = spawn('python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', 'web/www'], { cwd: root });
    server.on('error', reject);
    server.stdout.on('data', (chunk) => {
      const m = /port (\d+)/.exec(String(chunk));
      if (m) resolve({ server, url: `http://127.0.0.1:${m[1]}/` });
    });
    setTimeout(() => reject(new Error('the static server did not start in 10 s')), 10_000);
  });
}

function cli(args) {
  return execFileSync(fmnist, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

/** `fmnist evaluate`'s test accuracy of a model file. */
function cliAccuracy(model) {
  const text = cli(['evaluate', '--model', model]);
  const m = /test_accuracy: ([0-9.]+)/.exec(text);
  if (!m) throw new Error(`fmnist evaluate printed no test_accuracy:\n${text}`);
  return Number(m[1]);
}

/** Focuses `selector` and presses Enter. */
async function press(page, selector) {
  await page.focus(selector);
  await page.keyboard.press('Enter');
}

/** Replaces a field's text by typing, as a person would. */
async function setField(page, selector, text) {
  await page.focus(selector);
  await page.keyboard.down('Control');
  await page.keyboard.press('KeyA');
  await page.keyboard.up('Control');
  await page.keyboard.type(text);
}

/** Opens the file chooser from `selector` with the keyboard and picks `files` (one path or a list). */
async function choose(page, selector, files) {
  const [chooser] = await Promise.all([page.waitForFileChooser({ timeout: 10_000 }), press(page, selector)]);
  await chooser.accept([files].flat());
}

/** The page's error line once its busy call settles ('' when there is none). */
async function pageError(page) {
  await page.waitForFunction(() => !window.fmnistApp.running, { timeout: MINUTE, polling: 200 });
  return page.$eval('#error', (e) => (e.hidden ? '' : e.textContent));
}

/** A browser without WebGPU gets a message saying so, and nothing to press. */
async function withoutWebGpu(browser, url) {
  const page = await browser.newPage();
  await page.evaluateOnNewDocument(() => {
    delete Navigator.prototype.gpu;
  });
  await page.goto(url);
  await page.waitForFunction(() => !document.querySelector('#error').hidden, { timeout: MINUTE });
  const error = await page.$eval('#error', (e) => e.textContent);
  const disabled = await page.$eval('#load-served', (b) => b.disabled);
  await page.close();
  return { error, disabled };
}

/** Seconds of one epoch of the native GPU path (`fmnist train --device gpu`), on this machine now. */
function nativeGpuEpoch(dir) {
  rmSync(dir, { recursive: true, force: true });
  cli(['train', '--device', 'gpu', '--epochs', '1', '--out', dir]);
  const [header, row] = readFileSync(path.join(dir, 'history.csv'), 'utf8').trim().split('\n');
  return Number(row.split(',')[header.split(',').indexOf('seconds')]);
}

async function waitForFile(dir, name, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (readdirSync(dir).includes(name)) return path.join(dir, name);
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name} was not downloaded into ${dir} within ${ms / 1000} s`);
}

/** Waits for the page's busy call to finish, failing with the page's error line if it shows one. */
async function settle(page, what, ms) {
  await page.waitForFunction(() => !window.fmnistApp.running, { timeout: ms, polling: 500 });
  const error = await page.$eval('#error', (e) => (e.hidden ? '' : e.textContent));
  if (error) throw new Error(`${what}: the page says ${error}`);
}

async function main() {
  mkdirSync(out, { recursive: true });
  const downloads = path.join(out, 'downloads');
  rmSync(downloads, { recursive: true, force: true });
  mkdirSync(downloads);
  const { server, url } = await serve();
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ['--no-sandbox', '--enable-unsafe-webgpu'],
  });
  const summary = { url, epochs };
  try {
    const noGpu = await withoutWebGpu(browser, url);
    check(noGpu.error.startsWith('error: WebGPU is not available') && noGpu.disabled, `without WebGPU: ${noGpu.error}`);

    const page = await browser.newPage();
    await page.setViewport({ width: 1000, height: 900 });
    page.on('console', (m) => console.log(`page: ${m.text()}`));
    page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
    await page.goto(url);
    await page.waitForFunction(() => window.fmnistApp?.ready || !document.querySelector('#error').hidden, { timeout: MINUTE });
    const error = await page.$eval('#error', (e) => (e.hidden ? '' : e.textContent));
    if (error) throw new Error(`the page did not start: ${error}`);
    summary.adapter = await page.$eval('#gpu-status', (e) => e.textContent);
    console.log(summary.adapter);

    // A bad file gets a readable message naming it, and the page goes on.
    const corrupt = path.join(out, 'train-images-idx3-ubyte.gz');
    writeFileSync(corrupt, readFileSync(path.join(root, 'web/www/data/train-images-idx3-ubyte.gz')).subarray(0, 100_000));
    await choose(page, '#data-files', [corrupt, path.join(root, 'web/www/data/train-labels-idx1-ubyte.gz')]);
    const badData = await pageError(page);
    check(/^error: train-images-idx3-ubyte\.gz: .*(gzip|ends|truncated)/.test(badData), `a truncated data file is named in the error: ${badData}`);

    // Files chosen from disk: the test split alone, uncompressed for one of them.
    const plainLabels = path.join(out, 't10k-labels-idx1-ubyte');
    writeFileSync(plainLabels, gunzipSync(readFileSync(path.join(root, 'web/www/data/t10k-labels-idx1-ubyte.gz'))));
    await choose(page, '#data-files', [path.join(root, 'web/www/data/t10k-images-idx3-ubyte.gz'), plainLabels]);
    check(await pageError(page) === '', 'the test files chosen from disk load');
    const chosen = await page.$eval('#data-status', (e) => e.textContent);
    check(chosen.includes('0 training and 10000 test'), `chosen from disk: ${chosen}`);

    // Keyboard only, as a visitor without a mouse would: focus a control, press Enter.
    await press(page, '#load-served');
    await settle(page, 'loading the data', 2 * MINUTE);
    summary.data = await page.$eval('#data-status', (e) => e.textContent);
    check(summary.data.includes('60000 training and 10000 test'), `data loaded: ${summary.data}`);

    // Type the epochs, then Enter submits the form.
    await setField(page, '#epochs', String(epochs));
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => window.fmnistApp.running, { timeout: MINUTE });
    await settle(page, 'training', 30 * MINUTE);
    const trained = await page.evaluate(() => window.fmnistApp.lastTrain);
    const test = await page.evaluate(() => window.fmnistApp.lastTest);
    summary.history = trained.history;
    summary.train_adapter = trained.adapter;
    summary.seconds_per_epoch = trained.history.map((r) => r.seconds);
    summary.test_accuracy = test.accuracy;
    summary.test_loss = test.loss;
    console.log(await page.$eval('#log', (e) => e.textContent));
    console.log(await page.$eval('#test-result', (e) => e.textContent));
    check(trained.history.length === epochs, `${epochs} epoch(s) trained (${trained.end})`);
    check(test.accuracy >= MIN_ACCURACY, `test accuracy ${test.accuracy.toFixed(4)} >= ${MIN_ACCURACY}`);

    await choose(page, '#drop-zone', photo);
    await settle(page, 'predicting the photo', 2 * MINUTE);
    const shown = await page.evaluate(() => window.fmnistApp.lastPhoto);
    const names = await page.evaluate(() => window.fmnistApp.names);
    summary.photo = { file: path.basename(photo), predicted: names[shown.predicted], probability: shown.probabilities[shown.predicted] };
    check(Math.abs(shown.probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-4, 'the photo\'s probabilities sum to 1');

    const cdp = await page.createCDPSession();
    await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });
    await press(page, '#download');
    const model = await waitForFile(downloads, 'model.safetensors', MINUTE);
    await page.screenshot({ path: path.join(out, 'page.png'), fullPage: true });

    const cliTest = cliAccuracy(model);
    summary.cli_test_accuracy = cliTest;
    check(Math.abs(cliTest - test.accuracy) <= 1e-4 + 1e-9,
      `fmnist evaluate of the page's model: ${cliTest.toFixed(4)}, the page: ${test.accuracy.toFixed(4)} (within one image)`);
    const cliPhoto = JSON.parse(cli(['predict', '--model', model, '--json', photo]));
    check(cliPhoto.predicted_index === shown.predicted,
      `fmnist predict of the photo: ${cliPhoto.predicted}, the page: ${names[shown.predicted]}`);

    // A model the CLI trained loads in the page and scores there as the CLI scores it.
    const cliRun = path.join(out, 'cli-run');
    rmSync(cliRun, { recursive: true, force: true });
    cli(['train', '--device', 'cpu', '--epochs', '1', '--limit-train', '6000', '--hidden', '64', '--out', cliRun]);
    const cliModel = path.join(cliRun, 'model.safetensors');
    const cliModelAccuracy = cliAccuracy(cliModel);
    await choose(page, '#model-file', cliModel);
    await settle(page, 'loading the CLI\'s model', 5 * MINUTE);
    const loaded = await page.evaluate(() => window.fmnistApp.lastTest);
    summary.cli_model = { cli_accuracy: cliModelAccuracy, page_accuracy: loaded.accuracy, status: await page.$eval('#model-status', (e) => e.textContent) };
    // A file that is no model: a readable message naming it; the loaded model stays.
    await choose(page, '#model-file', photo);
    const badModel = await pageError(page);
    check(/^error: test-0-ankle-boot\.png: not a usable fmnist checkpoint/.test(badModel), `a picture loaded as a model is refused: ${badModel}`);

    // The same epoch natively, right after the browser's: the two paths' speeds on this machine.
    summary.native_gpu_seconds_per_epoch = nativeGpuEpoch(path.join(out, 'native-run'));
    console.log(`seconds per epoch: browser ${summary.seconds_per_epoch.join(', ')}, native GPU ${summary.native_gpu_seconds_per_epoch}`);
    check(summary.cli_model.status.includes('784-64-10'), `the page describes the CLI's model: ${summary.cli_model.status}`);
    check(Math.abs(cliModelAccuracy - loaded.accuracy) <= 1e-4 + 1e-9,
      `the CLI's model in the page: ${loaded.accuracy.toFixed(4)}, fmnist evaluate: ${cliModelAccuracy.toFixed(4)} (within one image)`);
    // Stop ends a run (here with dropout) between two steps and keeps its weights as the page's model.
    await setField(page, '#dropout', '0.2');
    await setField(page, '#epochs', '3');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /Epoch 1\/3\n\d+\/\d+ - loss/.test(document.querySelector('#log').textContent), { timeout: 5 * MINUTE, polling: 100 });
    await press(page, '#stop');
    await settle(page, 'stopping', 5 * MINUTE);
    const stopped = await page.evaluate(() => window.fmnistApp.lastTrain);
    check(stopped.end === 'stopped' && stopped.history.length === 0 && stopped.steps > 0 && stopped.steps < 1875,
      `Stop ended the run after ${stopped.steps} steps (${stopped.end}), and the page kept a model: ${await page.$eval('#model-status', (e) => e.textContent)}`);
  } finally {
    await browser.close();
    server.kill();
    writeFileSync(path.join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  }
  console.log(`e2e: summary in ${path.join(out, 'summary.json')}, screenshot ${path.join(out, 'page.png')}`);
  if (failures.length) {
    console.log(`e2e: ${failures.length} check(s) FAILED`);
    process.exit(1);
  }
  console.log('e2e: all checks passed');
}

if (!existsSync(fmnist)) {
  console.error(`e2e: ${fmnist} is missing: build it with cargo build --release`);
  process.exit(1);
}
main().catch((err) => {
  console.error(`e2e: ${err.stack ?? err}`);
  process.exit(1);
});
