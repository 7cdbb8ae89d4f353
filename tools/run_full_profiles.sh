#!/usr/bin/env bash
# Runs the full profiles of the experiments (the report's settings; for the imbalance study the
# paper's regime: 256-px slices, the official schedule over 100 epochs, 10 seeds) on a GPU, on the stand-ins
# (or on the real data with BL_TUTORIAL_DATA set), and writes their results where the book
# finds them: bl_tutorial/results/<task>-full/ (package data, committed with the repository).
#
#   bash tools/run_full_profiles.sh            # from the repository root, in its environment
#
# It first prints the projected training time of every grid on this device
# (benchmarks/training_step.py), then runs each grid; an interrupted run resumes when the
# script is run again. Commit results.json, experiment.json and figures/*.png (git ignores
# runs/, the checkpoints and the saved probabilities).
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU: the full profiles are sized for one')"
python benchmarks/training_step.py --repeats 3 --project full
status=0
for task in drive acdc imbalance; do
    # a failed (diverged) run is recorded and reported; the other grid still runs
    python -m bl_tutorial.experiments "$task" --profile full --out "bl_tutorial/results/$task-full" --quiet || status=$?
done
exit "$status"
