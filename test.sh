#!/usr/bin/env bash
# Set up on first use, then run the test suite. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$root/scripts/ensure_env.sh"
cd "$root"
exec "$root/.venv/bin/python" -m pytest tests "$@"
