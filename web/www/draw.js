// The tutorial's figures on canvases: a grid of images with their classes, the loss and accuracy
// curves, the predictions with probability bars, a photo as the model saw it, and the confusion table.

const SIDE = 28;
const BLUE = '#1f77b4';
const RED = '#d62728';
const GREEN = '#2ca02c';
const GREY = '#888';

/** Draws 784 grey bytes as a 28x28 picture scaled to `size` pixels at (x, y). */
export function drawImage(ctx, pixels, x, y, size) {
  const img = new ImageData(SIDE, SIDE);
  for (let i = 0; i < SIDE * SIDE; i++) {
    // The tutorial's `plt.cm.binary`: 0 is white, 255 black.
    const v = 255 - pixels[i];
    img.data.set([v, v, v, 255], i * 4);
  }
  const tile = document.createElement('canvas');
  tile.width = SIDE;
  tile.height = SIDE;
  tile.getContext('2d').putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tile, x, y, size, size);
  ctx.strokeStyle = '#ccc';
  ctx.strokeRect(x + 0.5, y + 0.5, size - 1, size - 1);
}

function clear(canvas) {
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.font = '13px sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  return ctx;
}

/** The tutorial's 5x5 grid of training images, each with its class name. */
export function drawSamples(canvas, images, labels, names) {
  const ctx = clear(canvas);
  const cell = canvas.width / 5;
  const size = cell - 24;
  images.forEach((pixels, i) => {
    const x = (i % 5) * cell + 12;
    const y = Math.floor(i / 5) * (cell + 12) + 4;
    drawImage(ctx, pixels, x, y, size);
    ctx.fillStyle = '#000';
    ctx.fillText(names[labels[i]], x + size / 2, y + size + 4);
  });
}

/** Loss and accuracy per epoch: the running training curve and, when held out, validation points. */
export function drawCurve(canvas, title, points, validation, yMax) {
  const ctx = clear(canvas);
  const pad = { left: 44, right: 12, top: 24, bottom: 32 };
  const w = canvas.width - pad.left - pad.right;
  const h = canvas.height - pad.top - pad.bottom;
  const xMax = Math.max(1, ...points.map((p) => p[0]), ...validation.map((p) => p[0]));
  const top = yMax ?? Math.max(1e-3, ...points.map((p) => p[1]), ...validation.map((p) => p[1])) * 1.1;
  const px = (x) => pad.left + (x / xMax) * w;
  const py = (y) => pad.top + h - (Math.min(y, top) / top) * h;
  ctx.fillStyle = '#000';
  ctx.fillText(title, canvas.width / 2, 4);
  ctx.strokeStyle = GREY;
  ctx.strokeRect(pad.left, pad.top, w, h);
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    ctx.fillText(v.toFixed(2), pad.left - 4, py(v));
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  ctx.fillText('epoch', pad.left + w / 2, pad.top + h + 16);
  for (let e = 0; e <= xMax; e += Math.max(1, Math.ceil(xMax / 10))) {
    ctx.fillText(String(e), px(e), pad.top + h + 2);
  }
  const line = (pts, colour) => {
    if (pts.length === 0) return;
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    pts.forEach(([x, y], i) => (i === 0 ? ctx.moveTo(px(x), py(y)) : ctx.lineTo(px(x), py(y))));
    ctx.stroke();
    ctx.fillStyle = colour;
    pts.forEach(([x, y]) => ctx.fillRect(px(x) - 2, py(y) - 2, 4, 4));
    ctx.lineWidth = 1;
  };
  line(points, BLUE);
  line(validation, GREEN);
  ctx.textAlign = 'left';
  ctx.fillStyle = BLUE;
  ctx.fillText('training', pad.left + 8, pad.top + 6);
  if (validation.length) {
    ctx.fillStyle = GREEN;
    ctx.fillText('validation', pad.left + 80, pad.top + 6);
  }
}

/** Ten probability bars, the predicted class red unless it is the true one (blue). */
function drawBars(ctx, probs, predicted, truth, x, y, w, h) {
  const bw = w / probs.length;
  ctx.strokeStyle = GREY;
  ctx.strokeRect(x + 0.5, y + 0.5, w, h);
  probs.forEach((p, c) => {
    ctx.fillStyle = c === truth ? BLUE : c === predicted ? RED : '#777';
    const bh = p * h;
    ctx.fillRect(x + c * bw + 2, y + h - bh, bw - 4, bh);
  });
  ctx.fillStyle = '#000';
  ctx.font = '10px sans-serif';
  probs.forEach((_, c) => ctx.fillText(String(c), x + (c + 0.5) * bw, y + h + 2));
  ctx.font = '13px sans-serif';
}

function caption(names, predicted, probs, truth) {
  const pct = Math.round(100 * probs[predicted]);
  return truth === undefined
    ? `${names[predicted]} ${pct}%`
    : `${names[predicted]} ${pct}% (${names[truth]})`;
}

/** The tutorial's `plot_image` + `plot_value_array` for the first test images, 3 per row. */
export function drawPredictions(canvas, images, labels, probabilities, names) {
  const ctx = clear(canvas);
  const cols = 3;
  const cw = canvas.width / cols;
  const ch = canvas.height / Math.ceil(images.length / cols);
  images.forEach((pixels, i) => {
    const x = (i % cols) * cw;
    const y = Math.floor(i / cols) * ch;
    const size = ch - 24;
    const probs = probabilities[i];
    const predicted = probs.indexOf(Math.max(...probs));
    drawImage(ctx, pixels, x + 6, y + 2, size);
    ctx.fillStyle = predicted === labels[i] ? BLUE : RED;
    ctx.textAlign = 'left';
    ctx.fillText(caption(names, predicted, probs, labels[i]), x + 6, y + size + 4);
    ctx.textAlign = 'center';
    drawBars(ctx, probs, predicted, labels[i], x + size + 16, y + 4, cw - size - 28, size - 14);
  });
}

/** A photo as the model saw it, beside its probabilities. */
export function drawPhoto(canvas, report, names) {
  const ctx = clear(canvas);
  const size = canvas.height - 24;
  drawImage(ctx, report.pixels, 0, 0, size);
  ctx.fillStyle = '#000';
  ctx.fillText(caption(names, report.predicted, report.probabilities), size / 2, size + 4);
  // No true class is known: the prediction is drawn as a right one.
  drawBars(ctx, report.probabilities, report.predicted, report.predicted, size + 20, 4, canvas.width - size - 30, size - 14);
}

/** The confusion matrix as a table, each cell shaded by its share of its row. */
export function fillConfusion(table, confusion, names) {
  table.replaceChildren();
  const head = table.createTHead().insertRow();
  const corner = document.createElement('th');
  corner.textContent = 'true \\ predicted';
  head.append(corner);
  for (const name of names) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = name;
    head.append(th);
  }
  const body = table.createTBody();
  confusion.forEach((row, t) => {
    const tr = body.insertRow();
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = names[t];
    tr.append(th);
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((count, p) => {
      const td = tr.insertCell();
      td.textContent = String(count);
      const share = count / total;
      td.style.background = `rgba(${t === p ? '31,119,180' : '214,39,40'},${Math.min(1, share * 1.5)})`;
      if (share > 0.5) td.style.color = '#fff';
    });
  });
}
