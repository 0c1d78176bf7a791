#!/bin/bash
# Replays the Dockerfile's instructions in a clean venv the way the image runs them (no Docker engine needed):
#   sudo tests/hub/replay_dockerfile.sh [WORK_DIR]   (root: it runs the app as uid 10001 with setpriv)
# /app and /home/app become folders under WORK_DIR; see docs/hosting.md for what this does and does not verify.
ROOT="${1:-$(mktemp -d)}/dockerroot"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$ROOT"; mkdir -p "$ROOT/app" "$ROOT/home/app"; chmod 755 "$(dirname "$ROOT")" "$ROOT"
step() { echo; echo "=== $(date -u +%T) $*"; }
step "FROM python:3.11-slim → clean venv with $(python3.11 --version)"
python3.11 -m venv "$ROOT/venv" || exit 1
PIP="$ROOT/venv/bin/pip"; PY="$ROOT/venv/bin/python"
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
cd "$ROOT/app"
step "RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0"
if timeout 120 $PIP install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0; then
  echo "RESULT step1: installed from download.pytorch.org"
else
  echo "RESULT step1: download.pytorch.org unreachable here; installing the same wheel (torch 2.13.0+cpu) from the local wheel mirror instead"
  $PIP install torch==2.13.0 || exit 1
fi
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
step "COPY requirements.txt pyproject.toml README.md; RUN grep -v ... | pip install -r"
cp "$REPO/requirements.txt" "$REPO/pyproject.toml" "$REPO/README.md" .
grep -v -E '^\s*(-e|pytest|hypothesis|playwright)' requirements.txt > "$ROOT/runtime-requirements.txt"
$PIP install -r "$ROOT/runtime-requirements.txt" || exit 1
$PY -c "import torch; print('torch still', torch.__version__)"
step "COPY cp2image app pages assets .streamlit; RUN pip install --no-deps -e ."
for d in cp2image app pages assets .streamlit; do cp -r "$REPO/$d" .; done
find . -name __pycache__ -prune -exec rm -rf {} +
$PIP install --no-deps -e . || exit 1
chown -R 10001:10001 "$ROOT/app" "$ROOT/home/app"
AS_APP=(setpriv --reuid=10001 --regid=10001 --clear-groups --)
export HOME="$ROOT/home/app" CP2IMAGE_ASSETS="$ROOT/app/assets" CP2IMAGE_CACHE="$ROOT/home/app/.cache/cp2image" \
       HF_HUB_OFFLINE=1 MPLCONFIGDIR="$ROOT/home/app/.cache/matplotlib"
step "USER app; RUN python -c (font cache, unpack dataset, load bundled weights offline)"
"${AS_APP[@]}" $PY -c "import matplotlib.font_manager; \
from cp2image.assets import bundled_dataset_dir; from cp2image.data.dataset import open_dataset; \
from cp2image.models.hub import load_model; \
print(len(open_dataset(bundled_dataset_dir())), 'cells;', load_model(None).source)" || exit 1
step "CMD streamlit run app/Home.py --server.port=18501 (0.0.0.0 → 127.0.0.1 here) + HEALTHCHECK"
"${AS_APP[@]}" $ROOT/venv/bin/streamlit run app/Home.py --server.port=18501 --server.address=127.0.0.1 > "$ROOT/streamlit.log" 2>&1 &
SERVER=$!
ok=1
for i in $(seq 1 90); do
  if "${AS_APP[@]}" $PY -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:18501/_stcore/health', timeout=4).status == 200 else 1)" 2>/dev/null; then
    echo "RESULT healthcheck: healthy after ~${i} s"; ok=0; break; fi
  sleep 1
done
kill $SERVER; wait $SERVER 2>/dev/null
[ $ok = 0 ] || { echo "RESULT healthcheck: never healthy"; tail -20 "$ROOT/streamlit.log"; }
step "sizes"; du -sh "$ROOT/venv" "$ROOT/app"
echo "DONE rc=$ok"
