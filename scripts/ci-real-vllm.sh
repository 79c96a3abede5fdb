#!/usr/bin/env bash
# The real-vLLM CI tier: a small grid search against a real `vllm serve` (the
# CPU build, a tiny random model), end to end, then the contract checks
# against a real server.
#
#   scripts/ci-real-vllm.sh
#
# Steps (each one's time is printed, and a summary at the end):
#   1. setup     scripts/setup-real-vllm.sh; a failed setup fails the tier
#                (nothing is skipped). Cold about 4 minutes, warm about 1 s.
#   2. build     the vllm-grid binary and the vllm-contract test binary.
#   3. search    vllm-grid search --configs grid_search_configs.cpu.json
#                --profile profiles/cpu-tiny.yml --backend process
#   4. report    scripts/real-vllm/check_report.py on the run: a champion,
#                prefix-caching configs accelerated and confirmed by the
#                server's counters, the failing config diagnosed with the
#                expected class, real metric names read, and the pressured
#                KV-cache workload (8 concurrent conversations) separating
#                pressure_kv_8m (8 MiB of KV cache) from chunked-on_prefix-on
#                (1 GiB): lower warm hit rate and acceleration (one server
#                more, about a minute of the tier).
#   5. predict   scripts/real-vllm/check_prediction.py: the memory
#                prediction of each searched config (recorded in its result)
#                against the `CPU KV cache size: N tokens` its server logged
#                (exact with the profile's --kv-cache-memory-bytes), then one
#                more server with --gpu-memory-utilization 0.08 and no KV size,
#                whose capacity comes from the share minus the worker's RSS,
#                against `vllm-grid plan --json`'s prediction: each within 10 %.
#   6. contract  one real server with the profile's flags, then
#                `cargo test -p vllm-contract` with VLLM_CONTRACT_BASE_URL set,
#                so the contract checks that pass against the simulator run
#                against real vLLM too.
#
# Outputs go to ${VLLM_GRID_CI_OUT:-target/ci-real-vllm} (run logs, report,
# the contract server's log). One vLLM server runs at a time (about 5 GiB
# RSS), always on 127.0.0.1, and is stopped on every exit path.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
out=${VLLM_GRID_CI_OUT:-$repo/target/ci-real-vllm}
home_dir=${VLLM_GRID_REAL_VLLM_HOME:-$HOME/.cache/vllm-grid/real-vllm}
venv="$home_dir/venv"
model_dir="$home_dir/models/tiny-qwen3"
run_id="ci-real-vllm-$(date -u +%Y%m%d-%H%M%S)-$$"

log() { printf '[ci-real-vllm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

declare -a step_names=() step_seconds=()
tier_started=$SECONDS
# Runs one step, records and prints its time; a failing step ends the tier.
step() {
    local name=$1
    shift
    local started=$SECONDS status=0
    log "step $name: start"
    "$@" || status=$?
    step_names+=("$name")
    step_seconds+=($((SECONDS - started)))
    log "step $name: $([ $status -eq 0 ] && echo ok || echo "FAILED (exit $status)") in $((SECONDS - started)) s"
    return $status
}

summary() {
    local status=$1
    # The shell has already returned from `step` here, so every finished
    # step is listed (a failing one included).
    printf '\n[ci-real-vllm] step times:\n' >&2
    local i
    for i in "${!step_names[@]}"; do
        printf '[ci-real-vllm]   %-9s %4d s\n' "${step_names[$i]}" "${step_seconds[$i]}" >&2
    done
    printf '[ci-real-vllm]   %-9s %4d s (%s)\n' total $((SECONDS - tier_started)) "$([ "$status" -eq 0 ] && echo passed || echo FAILED)" >&2
}

# Stops a server's process group: SIGTERM, up to 30 s, then SIGKILL.
stop_group() {
    local pid=$1 what=$2
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        log "stopping the $what (process group $pid)"
        kill -TERM -- "-$pid" 2>/dev/null || true
        local waited=0
        while kill -0 "$pid" 2>/dev/null && [ $waited -lt 30 ]; do
            sleep 1
            waited=$((waited + 1))
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
}

contract_server_pid=""
stop_contract_server() {
    stop_group "$contract_server_pid" "contract server"
    contract_server_pid=""
}

# The prediction of a utilization-based setting: the profile without its
# --kv-cache-memory-bytes, one config at 0.08 (the default 0.92 would take
# most of this machine's RAM), predicted right before its server starts.
predict_server_pid=""
stop_predict_server() {
    stop_group "$predict_server_pid" "prediction's server"
    predict_server_pid=""
}
trap 'status=$?; stop_contract_server; stop_predict_server; summary $status' EXIT
trap 'exit 130' INT TERM

# The API key of every server this tier starts: random, from the environment
# only, never printed.
if [ -z "${VLLM_CPU_TINY_API_KEY:-}" ]; then
    VLLM_CPU_TINY_API_KEY=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
fi
export VLLM_CPU_TINY_API_KEY
# Nothing from a model hub; no usage reports.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1

# Only this tier's own outputs are replaced (VLLM_GRID_CI_OUT may name any folder).
rm -rf "$out/logs" "$out/archives" "$out/contract-server.log"
mkdir -p "$out"

setup() { scripts/setup-real-vllm.sh; }

# Step functions run inside `step ... || ...`, where bash ignores `set -e`,
# so each one chains its commands and returns the first failure itself.
build() {
    # Release, as users run searches (and .ci/run's dry-run tier built it already).
    cargo build --release --locked -p vllm-grid &&
        cargo test --locked -p vllm-contract --no-run
}

search() {
    # Exit 0: a champion was found. Anything else fails the tier (3 would be
    # "no valid config", which the report check explains).
    "$repo/target/release/vllm-grid" search \
        --configs grid_search_configs.cpu.json \
        --profile profiles/cpu-tiny.yml \
        --backend process \
        --logs-dir "$out/logs" \
        --archives-dir "$out/archives" \
        --run-id "$run_id"
}

# Processes that carry this tier's API key in their environment: the
# search's servers inherit it, so after the search none may be left. (Matching
# by the key, not by name, leaves other people's vLLM servers alone.)
processes_with_our_key() {
    "$venv/bin/python" - <<'EOF'
import os
key = os.environ["VLLM_CPU_TINY_API_KEY"].encode()
wanted = {b"VLLM_CPU_TINY_API_KEY=" + key, b"VLLM_API_KEY=" + key}
for pid in filter(str.isdigit, os.listdir("/proc")):
    if int(pid) == os.getpid():
        continue
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ, open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            variables, argv = set(environ.read().split(b"\0")), cmdline.read().split(b"\0")
    except OSError:
        continue  # gone, or not ours to read
    if wanted & variables and b"vllm" in b" ".join(argv).lower():
        print(pid, b" ".join(argv)[:120].decode(errors="replace"))
EOF
}

report() {
    local run_dir="$out/logs/$run_id" leftover
    if [ -f "$run_dir/report.md" ]; then sed -n '1,60p' "$run_dir/report.md"; fi
    # Every server the search started must be gone (its guards tear down).
    leftover=$(processes_with_our_key) || return 1
    if [ -n "$leftover" ]; then
        log "vllm processes of this search still running:"
        printf '%s\n' "$leftover" >&2
        return 1
    fi
    "$venv/bin/python" scripts/real-vllm/check_report.py "$run_dir"
}

free_port() {
    "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

predict() {
    local run_dir="$out/logs/$run_id" dir="$out/predict"
    "$venv/bin/python" scripts/real-vllm/check_prediction.py run "$run_dir" || return 1
    rm -rf "$dir" && mkdir -p "$dir" || return 1
    sed '/- --kv-cache-memory-bytes/{N;d;}' profiles/cpu-tiny.yml >"$dir/cpu-tiny-share.yml" || return 1
    if grep -q -- '- --kv-cache-memory-bytes' "$dir/cpu-tiny-share.yml"; then
        log "cannot take --kv-cache-memory-bytes out of profiles/cpu-tiny.yml"
        return 1
    fi
    printf '%s\n' '{"format_version": 1, "profile": "cpu-tiny-share.yml", "axes": {},' \
        ' "named_configs": [{"name": "share_0.08", "settings": {"gpu_memory_utilization": 0.08}}]}' \
        >"$dir/plan.json" || return 1
    "$repo/target/release/vllm-grid" plan --configs "$dir/plan.json" --json >"$dir/prediction.json" || return 1
    local port
    port=$(free_port) || return 1
    # The profile's flags and environment (as in the contract step), with
    # the share instead of the KV size.
    VLLM_HOST_IP=127.0.0.1 VLLM_API_KEY=$VLLM_CPU_TINY_API_KEY setsid "$venv/bin/vllm" serve \
        --model "$model_dir" --served-model-name tiny \
        --max-model-len 4096 --gpu-memory-utilization 0.08 --enforce-eager \
        --enable-prompt-tokens-details --reasoning-parser qwen3 \
        --enable-auto-tool-choice --tool-call-parser hermes \
        --host 127.0.0.1 --port "$port" >"$dir/server.log" 2>&1 &
    predict_server_pid=$!
    local started=$SECONDS
    # The capacity is logged before the server listens: no need to wait for ready.
    until grep -q 'KV cache size' "$dir/server.log" 2>/dev/null; do
        if ! kill -0 "$predict_server_pid" 2>/dev/null || [ $((SECONDS - started)) -gt 300 ]; then
            log "the prediction's server logged no KV capacity; its log ends with:"
            tail -n 30 "$dir/server.log" >&2
            stop_predict_server
            return 1
        fi
        sleep 1
    done
    stop_predict_server
    "$venv/bin/python" scripts/real-vllm/check_prediction.py pair "$dir/prediction.json" share_0.08 "$dir/server.log"
}

contract() {
    local port
    port=$(free_port) || return 1
    local base_url="http://127.0.0.1:$port"
    # The same flags and environment as profiles/cpu-tiny.yml (defaults:
    # prefix caching and chunked prefill on); the key in the environment.
    log "starting vllm serve on $base_url (log: $out/contract-server.log)"
    VLLM_HOST_IP=127.0.0.1 VLLM_API_KEY=$VLLM_CPU_TINY_API_KEY setsid "$venv/bin/vllm" serve \
        --model "$model_dir" --served-model-name tiny \
        --max-model-len 4096 --kv-cache-memory-bytes 1G --enforce-eager \
        --enable-prompt-tokens-details --reasoning-parser qwen3 \
        --enable-auto-tool-choice --tool-call-parser hermes \
        --host 127.0.0.1 --port "$port" >"$out/contract-server.log" 2>&1 &
    contract_server_pid=$!
    local started=$SECONDS
    until curl -fsS -o /dev/null "$base_url/health" 2>/dev/null; do
        if ! kill -0 "$contract_server_pid" 2>/dev/null; then
            log "the contract server exited before it was ready; its log ends with:"
            tail -n 30 "$out/contract-server.log" >&2
            return 1
        fi
        if [ $((SECONDS - started)) -gt 300 ]; then
            log "the contract server was not ready after 300 s; its log ends with:"
            tail -n 30 "$out/contract-server.log" >&2
            return 1
        fi
        sleep 1
    done
    log "contract server ready after $((SECONDS - started)) s"
    local status=0
    # VLLM_CONTRACT_TOOL_LOGIT_BIAS_FILE: the logit_bias (every whitespace-only
    # token at -100) that a tool-call check needs to get a parsed call out of
    # this random model; see scripts/real-vllm/README.md.
    RUST_BACKTRACE=0 \
        VLLM_CONTRACT_TOOL_LOGIT_BIAS_FILE="$model_dir/tool_call_logit_bias.json" \
        VLLM_CONTRACT_BASE_URL=$base_url \
        VLLM_CONTRACT_MODEL=tiny \
        VLLM_CONTRACT_API_KEY=$VLLM_CPU_TINY_API_KEY \
        VLLM_CONTRACT_FEATURES=prompt_tokens_details,reasoning_parser,auto_tool_choice \
        VLLM_CONTRACT_MAX_MODEL_LEN=4096 \
        cargo test --locked -p vllm-contract --test it -- real_server || status=$?
    stop_contract_server
    return $status
}

step setup setup
step build build
step search search
step report report
step predict predict
step contract contract
