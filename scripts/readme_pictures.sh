#!/usr/bin/env bash
# Remake the README's pictures in docs/pictures/ with modelspec's own commands (and Chromium
# for the screenshots of pages). Needs the plots, graph and tensorboard extras, Graphviz's dot
# and chromium.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/docs/pictures
work=$(mktemp -d)
trap 'kill "${board:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
shot() {  # URL PNG WIDTH HEIGHT [extra chromium flags]
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --hide-scrollbars --user-data-dir="$work/profile-$(basename "$2")" \
        --window-size="$3,$4" "${@:5}" --screenshot="$2" "$1" 2>/dev/null
}
cd "$work"

CI=1 modelspec train "$repo/specs/digits_multi_io.yaml" --out runs/digits_multi_io \
    --set 'fit.callbacks=[{type: TensorBoard, histogram_freq: 1}]'
cp runs/digits_multi_io/training_curves.png "$out/training_curves.png"
modelspec graph "$repo/specs/digits_siamese.yaml" -o "$out/digits_siamese.svg" \
    --show-shapes --show-params
modelspec report runs/digits_multi_io --html -o report.html
shot "file://$work/report.html" "$out/report.png" 1000 1700

tensorboard --logdir runs/digits_multi_io/logs --port 6123 >/dev/null 2>&1 &
board=$!
sleep 8
shot "http://localhost:6123/#scalars&tagFilter=epoch_" "$out/tensorboard.png" 1400 900 \
    --virtual-time-budget=15000
