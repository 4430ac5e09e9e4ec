#!/usr/bin/env bash
# The screenshots of docs/guides/watching-runs.md ("The HTML report"), made by nncli's own
# commands and a headless Chromium: trains two iris runs (learning rates 0.01 and 0.05) and the
# digits CNN in a temporary folder, writes their reports with `nncli report`, renders each page
# in headless Chromium and saves a part of it:
#   docs/report-compare.png     the two iris runs' page from its top: the runs compared, the
#                               summary, the layers and the learning curves
#   docs/report-confusion.png   the digits CNN's page (its held-out test images): the
#                               confusion matrix and the ROC curves, one class against the rest
#   docs/report-classifier.png  the same page further down: the reliability diagram and the
#                               most confidently wrong images
# Needs nncli with the plot extra (pip install -e ".[plot]"; Pillow, which matplotlib brings,
# cuts and compresses the pictures) and Chromium or Chrome: chromium, chromium-browser,
# google-chrome or google-chrome-stable on the PATH, or $CHROMIUM naming one (Debian and Ubuntu:
# apt-get install chromium). Not run by CI. About half a minute on one CPU core; the runs are
# seeded, so the pages hold the same numbers every time (the training times and the versions
# aside).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT

browser=${CHROMIUM:-}
for name in chromium chromium-browser google-chrome google-chrome-stable; do
    [ -n "$browser" ] && break
    browser=$(command -v "$name" || true)
done
if [ -z "$browser" ]; then
    echo "no Chromium found: install one (apt-get install chromium) or set CHROMIUM=/path/to/it" >&2
    exit 1
fi

nncli train models/iris.yaml --quiet --output "$runs/steady/model.h5" \
    --set optimizer.learning_rate=0.01
nncli train models/iris.yaml --quiet --output "$runs/fast/model.h5" \
    --set optimizer.learning_rate=0.05
nncli report "$runs/steady/model.h5" "$runs/fast/model.h5" --data datasets/iris.csv \
    --output "$runs/compare.html"
nncli train models/digits-cnn.yaml --quiet --output "$runs/digits/model.h5"
nncli report "$runs/digits/model.h5" --data datasets/digits_png --output "$runs/digits.html"

# shoot PAGE WIDTH: the whole page in a window WIDTH pixels wide and taller than the page, as
# PAGE.png. A fresh profile each time; no first-run, sync, update or background requests (the
# page itself asks for nothing); --no-sandbox only where Chromium runs as root, which it
# refuses otherwise.
shoot() {
    local args=(--headless --disable-gpu --hide-scrollbars --force-device-scale-factor=1
        --no-first-run --disable-background-networking --disable-component-update
        --disable-sync --disable-quic --user-data-dir="$(mktemp -d -p "$runs")"
        --window-size="$2,12000" --screenshot="$1.png")
    [ "$(id -u)" = 0 ] && args+=(--no-sandbox)
    if ! "$browser" "${args[@]}" "file://$1" >"$runs/chromium.log" 2>&1; then
        cat "$runs/chromium.log" >&2
        exit 1
    fi
}

# cut PAGE FIRST END OUTPUT: from section FIRST's heading ("top": the page's top) down to
# section END's heading, trimmed of the white on the right, in 256 colours where they suffice. Each section's
# heading is underlined by a 1-pixel #ccc rule across the page, found in the picture; the
# page's <section id="..."> tags name them in order.
cut() {
    python - "$@" <<'PY'
import re
import sys

import numpy as np
from PIL import Image

page, first, end, output = sys.argv[1:]
ids = re.findall(r'<section id="([^"]+)">', open(page, encoding="utf-8").read())
pixels = np.asarray(Image.open(page + ".png").convert("RGB"))
rules = np.flatnonzero((pixels == 204).all(axis=2).sum(axis=1) > 0.8 * pixels.shape[1])
if len(rules) != len(ids) or first not in ids + ["top"] or end not in ids:
    sys.exit(f"{page}.png: {len(rules)} heading rules for {len(ids)} sections ({ids}); "
             f"the window too short or the styles changed?")
ABOVE = 40  # a heading's text and margin above its rule
top = 0 if first == "top" else rules[ids.index(first)] - ABOVE
bottom = rules[ids.index(end)] - ABOVE
part = pixels[top:bottom]
inside = rules[(rules >= top) & (rules < bottom)] - top  # the rules reach the right edge
ink = np.flatnonzero((np.delete(part, inside, axis=0) < 245).any(axis=(0, 2)))
part = part[:, : min(part.shape[1], ink[-1] + 24)]
picture = Image.fromarray(part)
# 256 colours, smaller by two thirds, where no pixel moves by more than 16 of 255 (a legend's
# few pixels of a curve's colour keep it); else every colour
few = picture.quantize(256, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE)
if np.abs(np.asarray(few.convert("RGB"), dtype=int) - part).max() <= 16:
    picture = few
picture.save(output, optimize=True)
print(f"wrote {output} ({part.shape[1]}x{part.shape[0]})")
PY
}

shoot "$runs/compare.html" 1200
cut "$runs/compare.html" top metrics docs/report-compare.png
shoot "$runs/digits.html" 1200
cut "$runs/digits.html" confusion pr docs/report-confusion.png
cut "$runs/digits.html" calibration importance docs/report-classifier.png
"$browser" --version 2>/dev/null
