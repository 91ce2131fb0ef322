// The page: loads the data, trains on the visitor's GPU through the fmnist module (WebAssembly +
// WebGPU), draws the tutorial's figures, predicts a photo, and saves or loads the model file.
// Every long call is a promise; while one runs, the buttons that would start another are disabled.

import init, { Trainer } from './pkg/fmnist_web.js';
import { drawCurve, drawPhoto, drawPredictions, drawSamples, fillConfusion } from './draw.js';

const $ = (id) => document.getElementById(id);

/** The four files by their official names (each may also come without `.gz`). */
const FILES = {
  train: ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte'],
  test: ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'],
};
/** No IDX file of Fashion-MNIST's shape is larger (60000 images, uncompressed, is 47 MB). */
const MAX_DATA_FILE = 64 << 20;
/** The CLI's limit on a picture file. */
const MAX_PHOTO_FILE = 256 << 20;
const SHOWN = 15;

const app = {
  trainer: null,
  names: [],
  loaded: { train: 0, test: 0 },
  hasModel: false,
  running: false,
  // What the page measured, read by the end-to-end test.
  lastTrain: null,
  lastTest: null,
  lastPhoto: null,
};
window.fmnistApp = app;

function showError(err) {
  const box = $('error');
  const text = err instanceof Error ? err.message : String(err);
  box.textContent = `error: ${text}`;
  box.hidden = false;
  box.focus?.();
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

/** Enables exactly the controls that make sense now. */
function refresh() {
  const data = app.loaded.train > 0 && app.loaded.test > 0;
  $('train').disabled = app.running || !data;
  $('stop').disabled = !app.running;
  $('load-served').disabled = app.running;
  $('data-files').disabled = app.running;
  $('evaluate').disabled = app.running || !app.hasModel || app.loaded.test === 0;
  $('photo').disabled = app.running || !app.hasModel;
  $('download').disabled = app.running || !app.hasModel;
  $('model-file').disabled = app.running;
}

/** Runs `work`, showing its error instead of losing it, with the page marked busy meanwhile. */
async function busy(work) {
  clearError();
  app.running = true;
  refresh();
  try {
    return await work();
  } catch (err) {
    showError(err);
    return undefined;
  } finally {
    app.running = false;
    refresh();
  }
}

async function readFile(file, limit, what) {
  if (file.size > limit) {
    throw new Error(`${file.name}: ${(file.size / 2 ** 20).toFixed(1)} MiB is larger than ${what} can be (${limit / 2 ** 20} MiB)`);
  }
  return new Uint8Array(await file.arrayBuffer());
}

function loadSplit(which, files) {
  const [images, labels] = FILES[which].map((name) => files.get(name));
  const n = app.trainer.load_split(which, images.name, images.bytes, labels.name, labels.bytes);
  app.loaded[which] = n;
}

function dataLoaded() {
  $('data-status').textContent =
    `${app.loaded.train} training and ${app.loaded.test} test images loaded.`;
  const images = [];
  const labels = [];
  for (let i = 0; i < Math.min(25, app.loaded.train); i++) {
    images.push(app.trainer.image('train', i));
    labels.push(app.trainer.label('train', i));
  }
  drawSamples($('samples'), images, labels, app.names);
}

/** The four files served beside the page (`make web` puts them in data/). */
async function loadServed() {
  const files = new Map();
  for (const name of [...FILES.train, ...FILES.test]) {
    const url = `data/${name}.gz`;
    $('data-status').textContent = `Downloading ${url}…`;
    const response = await fetch(url);
    if (!response.ok) {
      throw new Error(`${url}: the server answered ${response.status} ${response.statusText} (\`make web\` serves the dataset there; or choose the files from disk)`);
    }
    files.set(name, { name: url, bytes: new Uint8Array(await response.arrayBuffer()) });
  }
  loadSplit('train', files);
  loadSplit('test', files);
  dataLoaded();
}

/** The files the visitor chose, matched by their official names; two test files alone also do. */
async function loadChosen(list) {
  const files = new Map();
  for (const file of list) {
    const base = file.name.replace(/\.gz$/, '');
    const known = [...FILES.train, ...FILES.test].includes(base);
    if (!known) {
      throw new Error(`${file.name}: not one of the four Fashion-MNIST files (${[...FILES.train, ...FILES.test].map((n) => `${n}.gz`).join(', ')})`);
    }
    files.set(base, { name: file.name, bytes: await readFile(file, MAX_DATA_FILE, 'an IDX file of Fashion-MNIST') });
  }
  let any = false;
  for (const which of ['train', 'test']) {
    const have = FILES[which].filter((n) => files.has(n));
    if (have.length === 1) {
      const missing = FILES[which].find((n) => !files.has(n));
      throw new Error(`${have[0]} was chosen without ${missing}(.gz): choose both files of the ${which} split`);
    }
    if (have.length === 2) {
      loadSplit(which, files);
      any = true;
    }
  }
  if (any) dataLoaded();
}

function trainOptions() {
  const number = (id, what) => {
    const text = $(id).value.trim();
    if (text === '') return undefined;
    const v = Number(text);
    if (!Number.isFinite(v)) throw new Error(`${what} ${JSON.stringify(text)}: not a number`);
    return v;
  };
  const hidden = $('hidden').value.split(',').map((s) => s.trim());
  if (hidden.some((s) => !/^\d+$/.test(s))) {
    throw new Error(`hidden sizes ${JSON.stringify($('hidden').value)}: give whole numbers separated by commas, such as 128 or 256,64`);
  }
  const dropoutText = $('dropout').value.trim();
  const dropout = dropoutText === '' ? [] : dropoutText.split(',').map(Number);
  if (dropout.some((r) => !Number.isFinite(r))) {
    throw new Error(`dropout ${JSON.stringify(dropoutText)}: give a rate, or one per hidden layer separated by commas, such as 0.2 or 0.5,0.2`);
  }
  return {
    dropout,
    epochs: number('epochs', 'epochs'),
    batch_size: number('batch', 'batch size'),
    hidden: hidden.map(Number),
    optimizer: $('optimizer').value,
    learning_rate: number('lr', 'learning rate'),
    validation_split: number('validation', 'validation split'),
    seed: number('seed', 'seed'),
  };
}

async function train() {
  const options = trainOptions();
  const curve = { loss: [], accuracy: [], valLoss: [], valAccuracy: [] };
  const log = $('log');
  log.textContent = '';
  let epochLines = '';
  let epochs = options.epochs ?? 10;
  const redraw = () => {
    drawCurve($('loss-chart'), 'loss', curve.loss, curve.valLoss);
    drawCurve($('accuracy-chart'), 'accuracy', curve.accuracy, curve.valAccuracy, 1);
  };
  const onEvent = (json) => {
    const e = JSON.parse(json);
    if (e.kind === 'epoch_start') {
      epochs = e.epochs;
      epochLines += `Epoch ${e.epoch}/${e.epochs}\n`;
      log.textContent = epochLines;
    } else if (e.kind === 'tick') {
      const done = curve.loss.length ? curve.loss.at(-1)[0] : 0;
      const at = Math.floor(done) + e.step / e.steps;
      $('progress').value = at / epochs;
      log.textContent = `${epochLines}${e.step}/${e.steps} - loss: ${e.loss.toFixed(4)} - accuracy: ${e.accuracy.toFixed(4)}`;
      curve.loss.push([at, e.loss]);
      curve.accuracy.push([at, e.accuracy]);
      redraw();
    } else if (e.kind === 'epoch_end') {
      const r = e.record;
      epochLines += `${e.line}\n`;
      log.textContent = epochLines;
      $('progress').value = r.epoch / epochs;
      curve.loss.push([r.epoch, r.loss]);
      curve.accuracy.push([r.epoch, r.accuracy]);
      if (r.val_loss !== null) {
        curve.valLoss.push([r.epoch, r.val_loss]);
        curve.valAccuracy.push([r.epoch, r.val_accuracy]);
      }
      redraw();
    }
  };
  $('progress').value = 0;
  const report = JSON.parse(await app.trainer.train(JSON.stringify(options), onEvent));
  app.lastTrain = report;
  app.hasModel = true;
  app.names = JSON.parse(app.trainer.class_names());
  log.textContent = `${epochLines}Training ${report.end} after ${report.steps} steps on ${report.adapter}.\n`;
  modelStatus(report.model, 'Trained in this page');
  await evaluate();
}

async function evaluate() {
  const report = JSON.parse(await app.trainer.evaluate());
  app.lastTest = report;
  $('test-result').textContent =
    `${app.loaded.test}/${app.loaded.test} - test_loss: ${report.loss.toFixed(4)} - test_accuracy: ${report.accuracy.toFixed(4)}`;
  const images = [];
  const labels = [];
  for (let i = 0; i < Math.min(SHOWN, report.probabilities.length); i++) {
    images.push(app.trainer.image('test', i));
    labels.push(app.trainer.label('test', i));
  }
  drawPredictions($('predictions'), images, labels, report.probabilities, app.names);
  fillConfusion($('confusion'), report.confusion, app.names);
}

async function predictPhoto(file) {
  const bytes = await readFile(file, MAX_PHOTO_FILE, 'a picture');
  const report = JSON.parse(await app.trainer.predict_photo(bytes));
  app.lastPhoto = report;
  drawPhoto($('photo-view'), report, app.names);
  const pct = (100 * report.probabilities[report.predicted]).toFixed(1);
  const notes = [report.inverted ? 'inverted (light background)' : '', ...report.warnings].filter(Boolean);
  $('photo-result').textContent =
    `${file.name}: ${app.names[report.predicted]} (${pct}%)${notes.length ? ` - ${notes.join('; ')}` : ''}`;
}

function modelStatus(model, origin) {
  const trained = model.epochs != null ? `, ${model.epochs} epochs, ${model.steps} steps` : '';
  $('model-status').textContent = `${origin}: ${model.layers} (${model.parameters} parameters${trained}).`;
}

function download() {
  const bytes = app.trainer.model_file();
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = 'model.safetensors';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function loadModel(file) {
  // A model within the CLI's limits is far smaller; the module checks the exact bound.
  const bytes = await readFile(file, 2 ** 31, 'a model file');
  const model = JSON.parse(app.trainer.load_model(file.name, bytes));
  app.hasModel = true;
  app.names = model.class_names;
  modelStatus(model, `Loaded ${file.name}`);
  if (app.loaded.test > 0) await evaluate();
}

/** The photo input and its drop zone: Enter or Space on the zone opens the file chooser. */
function wirePhoto() {
  const zone = $('drop-zone');
  const input = $('photo');
  zone.tabIndex = 0;
  zone.addEventListener('keydown', (e) => {
    if ((e.key === 'Enter' || e.key === ' ') && !input.disabled) {
      e.preventDefault();
      input.click();
    }
  });
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const file = e.dataTransfer.files[0];
    if (!app.hasModel) showError('train or load a model before predicting a photo');
    else if (file) busy(() => predictPhoto(file));
  });
  input.addEventListener('change', () => {
    const file = input.files[0];
    input.value = '';
    if (file) busy(() => predictPhoto(file));
  });
}

function wire() {
  $('load-served').addEventListener('click', () => busy(loadServed));
  $('data-files').addEventListener('change', (e) => {
    const files = [...e.target.files];
    e.target.value = '';
    busy(() => loadChosen(files));
  });
  $('train-form').addEventListener('submit', (e) => {
    e.preventDefault();
    busy(train);
  });
  $('stop').addEventListener('click', () => app.trainer.stop());
  $('evaluate').addEventListener('click', () => busy(evaluate));
  $('download').addEventListener('click', () => {
    clearError();
    try {
      download();
    } catch (err) {
      showError(err);
    }
  });
  $('model-file').addEventListener('change', (e) => {
    const file = e.target.files[0];
    e.target.value = '';
    if (file) busy(() => loadModel(file));
  });
  wirePhoto();
}

/** What the browser tells of its adapter beyond wgpu's summary: vendor and architecture. */
async function adapterDetails() {
  const info = (await navigator.gpu.requestAdapter())?.info;
  const words = [info?.vendor, info?.architecture].filter(Boolean).join(' ');
  return words ? ` - ${words}` : '';
}

async function main() {
  wire();
  // Nothing starts before the module is ready (and nothing at all without WebGPU).
  app.running = true;
  refresh();
  if (!navigator.gpu) {
    $('gpu-status').textContent = 'This browser offers no WebGPU, so nothing can train here.';
    showError('WebGPU is not available in this browser (navigator.gpu is missing): use a browser listed at the bottom of the page, served from https or localhost');
    return;
  }
  await init();
  app.trainer = new Trainer();
  app.names = JSON.parse(app.trainer.class_names());
  app.running = false;
  refresh();
  try {
    const { adapter } = JSON.parse(await app.trainer.adapter());
    $('gpu-status').textContent = `WebGPU adapter: ${adapter}${await adapterDetails()}`;
  } catch (err) {
    $('gpu-status').textContent = 'WebGPU is present but gave no adapter.';
    showError(err);
  }
  app.ready = true;
  document.body.dataset.ready = 'true';
}

main().catch(showError);
