#!/usr/bin/env bash
# Re-records the startup fixtures of /work/shared/fixtures/vllm-0.32.0-cpu from a
# real `vllm serve` (the CPU build set up by scripts/setup-real-vllm.sh).
#
#   scripts/real-vllm/record-fixtures.sh OUT_DIR [CASE...]
#
# Cases (all by default): kv_too_small, kv_too_small_4096, bad_value, unknown_flag, missing_model,
# missing_model_repo, missing_model_config, gmu_above_available, port_in_use,
# chunked_off_small_batch, ok_gmu_0.08, ok_kv_64m, ok_kv_256m, ok_kv_1g.
# Each case starts one server on 127.0.0.1 (one at a time, about 5 GiB RSS),
# writes its whole log (stdout and stderr into one file, as the process backend
# reads them from its two pipes) to OUT_DIR/startup_<case>.log, and for ok_*
# cases also OUT_DIR/metrics_<case>.txt after three chat requests (ok_kv_1g
# also writes auth_check.txt, the status codes with VLLM_API_KEY in the
# environment, and speed.txt, single-request decode and prefill times). The
# server is stopped (its process group) on every path. The command line of
# every case goes to OUT_DIR/commands.txt. All cases take about 8 minutes on
# 2 cores. What the logs show: /work/shared/fixtures/vllm-0.32.0-cpu/README.md
# and the 2026-12-01 section of /work/shared/vllm-reference.md.
set -euo pipefail

out=${1:?usage: record-fixtures.sh OUT_DIR [CASE...]}
shift
mkdir -p "$out"
home_dir=${VLLM_GRID_REAL_VLLM_HOME:-$HOME/.cache/vllm-grid/real-vllm}
venv="$home_dir/venv"
model_dir="$home_dir/models/tiny-qwen3"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 VLLM_HOST_IP=127.0.0.1
# A random key, from the environment only, never printed.
VLLM_API_KEY=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export VLLM_API_KEY

server_pid="" blocker_pid=""
stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM -- "-$server_pid" 2>/dev/null || true
        local waited=0
        while kill -0 "$server_pid" 2>/dev/null && [ $waited -lt 30 ]; do
            sleep 1
            waited=$((waited + 1))
        done
        kill -KILL -- "-$server_pid" 2>/dev/null || true
    fi
    server_pid=""
    if [ -n "$blocker_pid" ]; then kill "$blocker_pid" 2>/dev/null || true; fi
    blocker_pid=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM

free_port() {
    "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

log() { printf '[record-fixtures %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# The profile's flags (profiles/cpu-tiny.yml) minus the port and KV bound.
base_flags=(--model "$model_dir" --served-model-name tiny --enforce-eager
    --enable-prompt-tokens-details --reasoning-parser qwen3
    --enable-auto-tool-choice --tool-call-parser hermes --host 127.0.0.1)

# run_case NAME EXPECT(ok|fail) FLAG...: starts the server, waits for /health
# or its exit (at most 300 s), then for ok cases sends three chat requests and
# saves /metrics, then stops it.
run_case() {
    local name=$1 expect=$2
    shift 2
    local port=${CASE_PORT:-$(free_port)}
    local logfile="$out/startup_$name.log"
    local -a argv=("$venv/bin/vllm" serve "$@" --port "$port")
    printf '%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" "${argv[*]/#$home_dir/\$VLLM_GRID_REAL_VLLM_HOME}" >>"$out/commands.txt"
    log "case $name: starting on port $port"
    setsid "${argv[@]}" </dev/null >"$logfile" 2>&1 &
    server_pid=$!
    local started=$SECONDS ready=false
    while kill -0 "$server_pid" 2>/dev/null; do
        if curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null; then
            ready=true
            break
        fi
        [ $((SECONDS - started)) -lt 300 ] || break
        sleep 1
    done
    local code=running
    if ! $ready; then
        wait "$server_pid" 2>/dev/null && code=0 || code=$?
    fi
    log "case $name: ready=$ready exit=$code after $((SECONDS - started)) s ($(wc -l <"$logfile") log lines)"
    if $ready && [ "$expect" = ok ]; then
        local i
        for i in 1 2 3; do
            curl -fsS --max-time 60 -o /dev/null "http://127.0.0.1:$port/v1/chat/completions" \
                -H "Authorization: Bearer $VLLM_API_KEY" -H 'Content-Type: application/json' \
                -d '{"model":"tiny","max_tokens":8,"messages":[{"role":"user","content":"Tell me a story about a cat who lived in a library and read every book on every shelf, twice."}]}'
        done
        curl -fsS --max-time 10 "http://127.0.0.1:$port/metrics" >"$out/metrics_$name.txt"
        [ "$name" != ok_kv_1g ] || { auth_check "$port" >"$out/auth_check.txt" && speed_check "$port" >"$out/speed.txt"; }
    fi
    stop_server
    sleep 2
}

# The key is in VLLM_API_KEY only (no --api-key): status codes of /v1/* and
# of the unprotected endpoints, without, with a wrong and with the right key.
auth_check() {
    local base="http://127.0.0.1:$1" path
    local chat='{"model":"tiny","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}'
    echo "# server started with VLLM_API_KEY in its environment and no --api-key"
    for path in /v1/models /health /metrics /version /ping; do
        printf 'GET %-12s no key: %s  wrong key: %s  right key: %s\n' "$path" \
            "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$base$path")" \
            "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Authorization: Bearer wrong' "$base$path")" \
            "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Authorization: Bearer $VLLM_API_KEY" "$base$path")"
    done
    for path in /v1/chat/completions /tokenize; do
        printf 'POST %-20s no key: %s  wrong key: %s  right key: %s\n' "$path" \
            "$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -H 'Content-Type: application/json' -d "$chat" "$base$path")" \
            "$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -H 'Content-Type: application/json' -H 'Authorization: Bearer wrong' -d "$chat" "$base$path")" \
            "$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -H 'Content-Type: application/json' -H "Authorization: Bearer $VLLM_API_KEY" -d "$chat" "$base$path")"
    done
    printf '401 body: %s\n' "$(curl -s --max-time 10 "$base/v1/models")"
}

# One request at a time: decode speed (128 tokens, ignore_eos) and prefill
# speed (a long prompt, 1 output token), from the server's usage and curl's time.
speed_check() {
    local base="http://127.0.0.1:$1" long i reply
    long=$(for i in $(seq 1 700); do printf 'river stone garden window '; done)
    for i in 1 2; do
        reply=$(curl -s --max-time 120 -w '\n%{time_total}' \
            -H 'Content-Type: application/json' -H "Authorization: Bearer $VLLM_API_KEY" \
            -d '{"model":"tiny","max_tokens":128,"ignore_eos":true,"temperature":0,"messages":[{"role":"user","content":"Count to ten."}]}' \
            "$base/v1/chat/completions")
        printf 'decode  %s total_s=%s\n' "$(grep -o '"usage":{[^}]*}' <<<"$reply")" "$(tail -n 1 <<<"$reply")"
        reply=$(curl -s --max-time 120 -w '\n%{time_total}' \
            -H 'Content-Type: application/json' -H "Authorization: Bearer $VLLM_API_KEY" \
            -d "{\"model\":\"tiny\",\"max_tokens\":1,\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"$i $long\"}]}" \
            "$base/v1/chat/completions")
        printf 'prefill %s total_s=%s\n' "$(grep -o '"usage":{[^}]*}' <<<"$reply")" "$(tail -n 1 <<<"$reply")"
    done
}

run_named() {
    case $1 in
        # KV cache far below one max-length request: 4 MiB = 4096 tokens < 32768.
        kv_too_small) run_case "$1" fail "${base_flags[@]}" --kv-cache-memory-bytes 4M ;;
        # The profile's max-model-len 4096 with 2 MiB (2048 tokens).
        kv_too_small_4096) run_case "$1" fail "${base_flags[@]}" --max-model-len 4096 --kv-cache-memory-bytes 2M ;;
        # An invalid value for a typed flag.
        bad_value) run_case "$1" fail "${base_flags[@]}" --max-model-len 4096 --kv-cache-memory-bytes 1G --max-num-seqs abc ;;
        unknown_flag) run_case "$1" fail "${base_flags[@]}" --max-model-len 4096 --kv-cache-memory-bytes 1G --no-such-flag ;;
        missing_model) run_case "$1" fail --model /nonexistent/tiny-qwen3 --served-model-name tiny --max-model-len 4096 --kv-cache-memory-bytes 1G --enforce-eager --host 127.0.0.1 ;;
        # A Hugging Face repo id that is not in the (offline) cache.
        missing_model_repo) run_case "$1" fail --model no-such-org/no-such-model --served-model-name tiny --max-model-len 4096 --kv-cache-memory-bytes 1G --enforce-eager --host 127.0.0.1 ;;
        # An existing directory without config.json.
        missing_model_config)
            local empty
            empty=$(mktemp -d)
            run_case "$1" fail --model "$empty" --served-model-name tiny --max-model-len 4096 --kv-cache-memory-bytes 1G --enforce-eager --host 127.0.0.1
            rmdir "$empty"
            ;;
        # No --kv-cache-memory-bytes, a share of RAM above what is available:
        # the CPU build's analogue of the GPU's free-memory check.
        gmu_above_available) run_case "$1" fail "${base_flags[@]}" --max-model-len 4096 --gpu-memory-utilization 0.99 ;;
        port_in_use)
            local port
            port=$(free_port)
            "$venv/bin/python" -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(600)' "$port" &
            blocker_pid=$!
            sleep 1
            CASE_PORT=$port run_case "$1" fail "${base_flags[@]}" --max-model-len 4096 --kv-cache-memory-bytes 1G
            ;;
        chunked_off_small_batch) run_case "$1" fail "${base_flags[@]}" --max-model-len 4096 --kv-cache-memory-bytes 1G --no-enable-chunked-prefill --max-num-batched-tokens 2048 ;;
        # The utilization path (no --kv-cache-memory-bytes): the default 0.9 would
        # take about 20 GiB of this shared 23 GiB machine, so a small share.
        ok_gmu_0.08) run_case "$1" ok "${base_flags[@]}" --max-model-len 4096 --gpu-memory-utilization 0.08 ;;
        ok_kv_64m) run_case "$1" ok "${base_flags[@]}" --kv-cache-memory-bytes 64M ;;
        ok_kv_256m) run_case "$1" ok "${base_flags[@]}" --max-model-len 4096 --kv-cache-memory-bytes 256M ;;
        ok_kv_1g) run_case "$1" ok "${base_flags[@]}" --max-model-len 4096 --kv-cache-memory-bytes 1G ;;
        *) echo "record-fixtures: unknown case '$1'" >&2; exit 2 ;;
    esac
}

cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(kv_too_small kv_too_small_4096 bad_value unknown_flag missing_model missing_model_repo missing_model_config gmu_above_available port_in_use chunked_off_small_batch ok_gmu_0.08 ok_kv_64m ok_kv_256m ok_kv_1g)
for c in "${cases[@]}"; do run_named "$c"; done
