#!/usr/bin/env bash
# The screenshot of docs/guides/watching-runs.md ("The HTML report"): trains two small iris runs
# in a temporary folder, writes their report with `nncli report`, opens it in headless Chromium
# (or Chrome) and saves the page as docs/report-screenshot.png. Needs nncli with the plot extra
# (pip install -e ".[plot]") and a Chromium: chromium, chromium-browser, google-chrome or
# google-chrome-stable on the PATH, or $CHROMIUM naming one; failing those, Playwright's
# Chromium (pip install playwright && playwright install chromium). Not run by CI.
# About a minute on one CPU core.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT

nncli train models/iris.yaml --quiet --output "$runs/steady/model.h5" \
    --set optimizer.learning_rate=0.01
nncli train models/iris.yaml --quiet --output "$runs/fast/model.h5" \
    --set optimizer.learning_rate=0.05
report="$runs/report.html"
nncli report "$runs/steady/model.h5" "$runs/fast/model.h5" --data datasets/iris.csv \
    --output "$report"

shot=docs/report-screenshot.png
browser=${CHROMIUM:-}
for name in chromium chromium-browser google-chrome google-chrome-stable; do
    [ -n "$browser" ] && break
    browser=$(command -v "$name" || true)
done
if [ -n "$browser" ]; then
    # --allow-file-access-from-files is not needed: the page fetches nothing
    "$browser" --headless=new --disable-gpu --hide-scrollbars --window-size=1400,2400 \
        --screenshot="$PWD/$shot" "file://$report"
elif python -c "import playwright" 2>/dev/null; then
    python - "$report" "$shot" <<'PY'
import sys
from playwright.sync_api import sync_playwright

with sync_playwright() as p:
    browser = p.chromium.launch()
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    page.goto("file://" + sys.argv[1])
    page.screenshot(path=sys.argv[2])
    browser.close()
PY
else
    echo "no Chromium found: set CHROMIUM=/path/to/chromium or install one" >&2
    exit 1
fi
echo "wrote $shot"
