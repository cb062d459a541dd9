#!/usr/bin/env bash
# Create .venv and install adaptrl (with test tools) on first use; reuse it afterwards.
# Re-installs when pyproject.toml changed since the last install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${ADAPTRL_VENV:-$root/.venv}"
py="${PYTHON:-python3}"
stamp="$venv/.adaptrl-installed"
if [ ! -x "$venv/bin/python" ]; then
  echo "adaptrl: creating virtual environment in $venv" >&2
  "$py" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  echo "adaptrl: installing adaptrl and its dependencies (first run only)" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  # The MuJoCo families' tests (parity with Gymnasium, both physics backends) need both extras.
  "$venv/bin/python" -m pip install --quiet -e "$root[dev,mujoco,mjx]" >&2
  touch "$stamp"
fi
