#!/usr/bin/env bash
# Spread one sweep over the nodes of a Slurm cluster: each array task trains a disjoint,
# deterministic slice of the grid (`--shard K/N`) into the shared runs/ folder; a last job
# merges them into the report.
#
# From the workspace root, on a file system every node sees:
#
#   cargo build --release -p xtask -p vgrad-cli        # build once, before submitting
#   jobid=$(sbatch --parsable scripts/slurm-sweep.sh depth)
#   sbatch --dependency=afterany:$jobid --wrap "cargo xtask report depth"
#
# A task that is preempted or fails can simply be resubmitted: finished runs are kept
# and skipped. Change --array to use more or fewer nodes (N = array size).
#SBATCH --job-name=vgrad-sweep
#SBATCH --array=0-3
#SBATCH --cpus-per-task=8
#SBATCH --mem=8G
#SBATCH --time=01:00:00
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail

experiment="${1:-seed}"
cargo xtask sweep "$experiment" \
    --jobs "${SLURM_CPUS_PER_TASK:-1}" \
    --shard "${SLURM_ARRAY_TASK_ID:?run this script with sbatch}/${SLURM_ARRAY_TASK_COUNT:?run this script with sbatch}"
