#!/usr/bin/env bash
# Runs the whole test suite (unit tests, MPI integration tests, Slurm tests) with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
exec ctest --test-dir build --output-on-failure "$@"
