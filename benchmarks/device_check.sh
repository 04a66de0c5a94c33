#!/usr/bin/env bash
# The one-shot GPU check on a bare GPU machine: its own python3 and torch, deepres from src/.
#   bash benchmarks/device_check.sh PATH/TO/cifar10-jpg.tar.gz [OUT.json]
# Prints each step as it runs and writes every step's status and figures to OUT.json
# (default device-check.json). See benchmarks/device_check.py.
set -uo pipefail
cd "$(dirname "$0")/.."
data="${1:?usage: bash benchmarks/device_check.sh CIFAR10_ARCHIVE [OUT.json]}"
out="${2:-device-check.json}"
py="${PYTHON:-python3}"
missing=$("$py" - <<'PY'
import importlib.util
need = ["torch", "torchvision", "safetensors", "PIL", "numpy", "matplotlib", "tqdm"]
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
PY
)
if [ -n "$missing" ]; then
  echo "device_check: missing Python packages: $missing (pip install them, or use a venv)" >&2
  exit 2
fi
exec "$py" benchmarks/device_check.py --data "$data" --out "$out"
