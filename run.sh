#!/usr/bin/env bash
# The main job: set up on first use, meta-train RL² on 5-armed bandits (10 pulls per trial),
# meta-test it on 1000 held-out bandits next to the references, and write everything to
# runs/demo (metrics.csv, tensorboard/, checkpoints/, results/meta_test.md, adaptation_curve.png).
# Extra arguments are passed to `adaptrl train rl2` (e.g. --env grid-varibad --iterations 2000).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$root/scripts/ensure_env.sh"
cd "$root"
run_dir="runs/demo"
if [ -e "$run_dir/config.json" ]; then
  run_dir="runs/demo-$(date +%Y%m%d-%H%M%S)"  # never overwrite an earlier run
fi
exec "$root/.venv/bin/adaptrl" train rl2 --env bandit-k5-n10 --run-dir "$run_dir" "$@"
