#!/usr/bin/env bash
# The pictures of docs/guides/seeing-a-model.md (and the graph in networks-that-are-not-a-stack.md), made by nncli's own commands: trains the iris classifier (a step
# schedule, early stopping) and the digits CNN in a temporary folder, then draws them with
# `nncli plot` into docs/. Needs nncli installed with the plot extra: pip install -e ".[plot]".
# About half a minute on one CPU core; the same pictures every time (seeded runs).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT

nncli train models/iris.yaml --quiet --output "$runs/iris/model.h5" \
    --set optimizer.learning_rate=0.05 \
    --set 'optimizer.schedule={type: step, step_size: 15, gamma: 0.5}' \
    --set training.early_stopping.patience=10
nncli plot "$runs/iris/model.h5" --data datasets/iris.csv --output docs/iris-curves.png --force

digits="$runs/digits/model.h5"
nncli train models/digits-cnn.yaml --quiet --output "$digits"
nncli plot "$digits" --data datasets/digits_png --output docs/digits-confusion.png --force
nncli plot "$digits" --filters --output docs/digits-filters.png --force
nncli plot "$digits" --activations datasets/digits_png/3/1004.png \
    --output docs/digits-activations.png --force

nncli train models/penguins-wide-deep.yaml --quiet --output "$runs/penguins-wide-deep/model.h5"
nncli plot "$runs/penguins-wide-deep/model.h5" --graph --output docs/penguins-wide-deep-graph.png --force
