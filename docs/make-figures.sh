#!/bin/sh
# Draws every figure the README shows into docs/figures/, with the same commands the README names.
# Run from the repository root: sh docs/make-figures.sh (about half a minute on two cores).
set -eu
FMNIST=${FMNIST:-target/release/fmnist}
OUT=docs/figures
RUN=runs/tutorial
MODEL=$RUN/model.safetensors
cargo build --release
mkdir -p "$OUT"
"$FMNIST" train --test-every-epoch --out "$RUN"
for f in history confusion predictions mistakes; do cp "$RUN/$f.png" "$OUT/$f.png"; done
"$FMNIST" train --device cpu --validation-split 0.2 --epochs 30 --early-stopping 3 --save-best --out runs/early
cp runs/early/history.png "$OUT/history-validation.png"
"$FMNIST" show --index 0 --out "$OUT/image-train-0.png"
"$FMNIST" show --grid 25 --out "$OUT/grid-train-25.png"
"$FMNIST" predict --model "$MODEL" --index 0 --plot --out "$OUT/prediction-test-0.png"
"$FMNIST" predict --model "$MODEL" --index 12 --plot --out "$OUT/prediction-test-12.png"
"$FMNIST" predict --model "$MODEL" --index 1 --plot --bars-only --out "$OUT/chart-test-1.png"
"$FMNIST" predict --model "$MODEL" assets/samples/test-0-ankle-boot.png --plot --out "$OUT/photo-test-0-ankle-boot.png"
