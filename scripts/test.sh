#!/usr/bin/env bash
# The project's test command (see README). Builds the simulator's Docker image
# first, because the container manager's tests run it under the real engine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-sim-image.sh
cargo test --workspace --locked --no-fail-fast
