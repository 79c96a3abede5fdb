#!/usr/bin/env bash
# Builds the static vllm-sim binary and the `vllm-sim:latest` Docker image.
#
#   scripts/build-sim-image.sh            # binary + image
#   scripts/build-sim-image.sh --binary-only
#
# Outputs:
#   target/vllm-sim-static/vllm-sim       static x86_64 binary (tests use this
#                                         path, or the env var VLLM_SIM_BIN)
#   vllm-sim:latest                       FROM scratch, ENTRYPOINT ["/vllm-sim", "serve"]
#
# Idempotent and quick when nothing changed: cargo rebuilds incrementally, the
# binary is copied only when it differs, and the image is rebuilt only when its
# `vllm-grid.sim.binary-sha256` label differs from the binary's hash.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

target="x86_64-unknown-linux-gnu"
out_dir="target/vllm-sim-static"
image="vllm-sim:latest"

binary_only=false
case "${1:-}" in
  --binary-only) binary_only=true ;;
  "") ;;
  *) echo "usage: $0 [--binary-only]" >&2; exit 2 ;;
esac

echo "build-sim-image: building the static binary (cargo build --release -p vllm-sim --target $target)" >&2
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p vllm-sim --target "$target"

built="target/$target/release/vllm-sim"
if ! file_out="$(file "$built" 2>/dev/null)"; then file_out=""; fi
if [[ -n "$file_out" && "$file_out" != *"statically linked"* && "$file_out" != *"static-pie"* ]]; then
  echo "build-sim-image: $built is not statically linked ($file_out); install the static C library (glibc's libc.a, e.g. apt-get install libc6-dev)" >&2
  exit 1
fi

mkdir -p "$out_dir"
if ! cmp -s "$built" "$out_dir/vllm-sim"; then
  cp "$built" "$out_dir/vllm-sim.tmp"
  mv "$out_dir/vllm-sim.tmp" "$out_dir/vllm-sim"
fi
sha="$(sha256sum "$out_dir/vllm-sim" | cut -d' ' -f1)"
echo "build-sim-image: binary $out_dir/vllm-sim sha256 $sha" >&2

if $binary_only; then
  exit 0
fi

if ! docker info >/dev/null 2>&1; then
  echo "build-sim-image: the Docker engine is unreachable; start it (or check DOCKER_HOST) and re-run" >&2
  exit 1
fi

current="$(docker image inspect --format '{{ index .Config.Labels "vllm-grid.sim.binary-sha256" }}' "$image" 2>/dev/null || true)"
if [[ "$current" == "$sha" ]]; then
  echo "build-sim-image: $image is up to date" >&2
  exit 0
fi

# A private context holding only the binary and the Dockerfile keeps the
# build independent of the (large) target directory.
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$out_dir/vllm-sim" "$context/vllm-sim"
cp crates/vllm-sim/Dockerfile "$context/Dockerfile"
docker build --quiet \
  --label "vllm-grid.sim.binary-sha256=$sha" \
  --label "vllm-grid.sim.version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)" \
  -t "$image" "$context" >/dev/null
echo "build-sim-image: built $image" >&2
