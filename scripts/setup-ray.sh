#!/usr/bin/env bash
# Installs a pinned Ray (PyPI `ray[default]` 2.60.0: the CLI, the head's
# dashboard and its Jobs REST API) into its own virtualenv, for the Ray
# executor's tests. Idempotent: a second run finds its stamp and returns in
# about a second.
#
#   scripts/setup-ray.sh              # install or verify
#   scripts/setup-ray.sh --print-env  # and print `export VLLM_GRID_RAY=...` on
#                                     # stdout (only that), for `eval`
#   scripts/setup-ray.sh --relock     # re-resolve scripts/ray/requirements.lock
#
# Where things go (outside the repo, so fresh clones, CI included, reuse them):
#   ${VLLM_GRID_RAY_HOME:-$HOME/.cache/vllm-grid/ray}/
#     venv/                     the virtualenv (about 370 MB), `venv/bin/ray`
#     venv/.vllm-grid-stamp     hash of what the venv was built from
#     .setup.lock               flock: one setup at a time
#     pip-install.log           pip's output of the last install
#
# How the install works, and why:
#   * scripts/ray/requirements.lock pins every distribution of the venv with its
#     sha256 (`pip install --no-deps --require-hashes`), so two machines get
#     the same files, and a changed upload on the index fails loudly instead of
#     changing the venv. The hashes are those of the CPython 3.12 Linux x86_64
#     wheels, so the venv is built with Python 3.12.
#   * `pip check` then proves the lock is complete, and `ray --version` that
#     the CLI runs.
#
# Environment: VLLM_GRID_RAY_HOME (see above); VLLM_GRID_PYTHON, the Python 3.12
# interpreter for the venv (default: `$(pyenv prefix 3.12.1)/bin/python3.12`,
# else `python3.12` on PATH).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
helpers="$repo/scripts/ray"
lock_file="$helpers/requirements.lock"
home_dir=${VLLM_GRID_RAY_HOME:-$HOME/.cache/vllm-grid/ray}
venv="$home_dir/venv"
ray_version=2.60.0
ray_requirement="ray[default]==$ray_version"

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
            echo "setup-ray: unknown argument '$argument' (try --help)" >&2
            exit 2
            ;;
    esac
done

# Everything but the one export line goes to stderr, so `eval "$(... --print-env)"` works.
log() { printf '[setup-ray %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    printf 'setup-ray: error: %s\n' "$*" >&2
    exit 1
}

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# --- the interpreter ------------------------------------------------------------
if [ -n "${VLLM_GRID_PYTHON:-}" ]; then
    python=$VLLM_GRID_PYTHON
    command -v "$python" >/dev/null || die "VLLM_GRID_PYTHON='$python' is not an executable; point it at a Python 3.12"
elif command -v pyenv >/dev/null && prefix=$(pyenv prefix 3.12.1 2>/dev/null) && [ -x "$prefix/bin/python3.12" ]; then
    python="$prefix/bin/python3.12"
elif command -v python3.12 >/dev/null; then
    python=$(command -v python3.12)
else
    die "no Python 3.12 found (tried \$(pyenv prefix 3.12.1)/bin/python3.12 and python3.12 on PATH); install it (\`pyenv install 3.12.1\`) or set VLLM_GRID_PYTHON to a Python 3.12"
fi
"$python" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 12) else 1)' ||
    die "'$python' is Python $("$python" -c 'import platform; print(platform.python_version())'), but $lock_file holds CPython 3.12 wheels; set VLLM_GRID_PYTHON to a Python 3.12"
"$python" -c 'import venv, ensurepip' 2>/dev/null ||
    die "'$python' lacks the venv/ensurepip modules; install them (Debian: apt-get install python3.12-venv) or set VLLM_GRID_PYTHON to a full Python 3.12"
[ "$(uname -s)/$(uname -m)" = Linux/x86_64 ] || die "$lock_file is for Linux x86_64; this is $(uname -s)/$(uname -m) (run --relock on this platform)"

mkdir -p "$home_dir"
# One setup at a time (a developer and a CI run may share the home).
exec 9>"$home_dir/.setup.lock"
flock 9

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# Runs pip with its output kept in a log; a failure names the likely cause.
pip_logged() {
    local pip_log="$home_dir/pip-install.log"
    if ! "$@" >"$pip_log" 2>&1; then
        if grep -qiE 'NewConnectionError|Temporary failure in name resolution|Network is unreachable|ConnectTimeout|ReadTimeout|Max retries exceeded|ProxyError|SSLError|No matching distribution found' "$pip_log"; then
            die "pip could not download from the package index (no network, or PIP_INDEX_URL/proxy wrong); connect and re-run. pip's log: $pip_log"
        fi
        if grep -q 'THESE PACKAGES DO NOT MATCH THE HASHES' "$pip_log"; then
            die "a downloaded file does not match its hash in $lock_file (the index changed an upload, or a proxy altered it); check, then regenerate with --relock. pip's log: $pip_log"
        fi
        die "pip failed ($*); see $pip_log"
    fi
}

if $relock; then
    # Resolves ray[default]==$ray_version in a scratch venv and writes the lock
    # with each wheel's sha256. Run by hand when moving versions; review the diff.
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    log "resolving $ray_requirement in $scratch"
    "$python" -m venv "$scratch/venv"
    pip_logged "$scratch/venv/bin/pip" download --only-binary=:all: -d "$scratch/wheels" "$ray_requirement"
    pip_logged "$scratch/venv/bin/pip" install --no-index --find-links "$scratch/wheels" "$ray_requirement"
    "$scratch/venv/bin/python" - "$scratch/wheels" "$ray_version" >"$lock_file.tmp" <<'EOF'
import hashlib, importlib.metadata as metadata, pathlib, re, sys

def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()

wheels = {}
for wheel in pathlib.Path(sys.argv[1]).glob("*.whl"):
    name, version = wheel.name.split("-")[:2]
    wheels[(canonical(name), version)] = hashlib.sha256(wheel.read_bytes()).hexdigest()
print(f"# Every distribution of the Ray venv (CPython 3.12, Linux x86_64) for ray[default]=={sys.argv[2]},")
print("# installed with pip --no-deps --require-hashes. Regenerate with: scripts/setup-ray.sh --relock")
installed = sorted(
    (canonical(d.metadata["Name"]), d.version) for d in metadata.distributions()
    if canonical(d.metadata["Name"]) not in ("pip", "setuptools", "wheel")
)
for name, version in installed:
    if (name, version) not in wheels:
        sys.exit(f"setup-ray: error: {name}=={version} is installed but no wheel of it was downloaded")
    print(f"{name}=={version} --hash=sha256:{wheels[(name, version)]}")
EOF
    mv "$lock_file.tmp" "$lock_file"
    log "wrote $lock_file ($(grep -c -- '--hash' "$lock_file") distributions); re-run without --relock to rebuild the venv"
    exit 0
fi

[ -f "$lock_file" ] || die "$lock_file is missing (restore it from git, or create it with --relock)"
grep -q "^ray==$ray_version " "$lock_file" || die "$lock_file does not pin ray==$ray_version; regenerate it with --relock"

# --- the venv -----------------------------------------------------------------
venv_inputs=$(
    {
        echo "$ray_requirement"
        "$python" -c 'import sys; print(sys.version)'
        hash_of "$lock_file"
    } | sha256sum | cut -d' ' -f1
)
venv_stamp="$venv/.vllm-grid-stamp"
if [ -f "$venv_stamp" ] && [ "$(cat "$venv_stamp")" = "$venv_inputs" ] && [ -x "$venv/bin/ray" ]; then
    log "venv up to date: $venv"
else
    started=$SECONDS
    log "creating venv $venv with $python (about 370 MB; about 30 s with a warm index)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    log "installing $ray_requirement and its dependencies from $lock_file"
    pip_logged "$venv/bin/pip" install --no-deps --require-hashes --only-binary=:all: -r "$lock_file"
    # Any broken requirement means the lock is incomplete.
    "$venv/bin/pip" check >"$home_dir/pip-check.log" 2>&1 ||
        die "pip check found broken requirements in $venv (regenerate the lock with --relock): $(cat "$home_dir/pip-check.log")"
    echo "$venv_inputs" >"$venv_stamp"
    log "venv ready in $((SECONDS - started)) s ($(du -sh "$venv" | cut -f1))"
fi
version_line=$(RAY_USAGE_STATS_ENABLED=0 "$venv/bin/ray" --version 2>&1) ||
    die "the venv $venv is broken: \`ray --version\` failed ($version_line); delete it and re-run"
case "$version_line" in
    *"version $ray_version"*) ;;
    *) die "the venv $venv has '$version_line', not Ray $ray_version; delete it and re-run" ;;
esac

log "ready: $venv/bin/ray ($version_line)"
if $print_env; then
    echo "export VLLM_GRID_RAY=$venv/bin/ray"
fi
