#!/usr/bin/env python3
"""KV-cache pressure probe against a real `vllm serve` (stdlib only).

N conversations run at once, turn by turn: every round sends each
conversation's whole history plus a new user message, concurrently, streams
the reply and appends it. Each conversation has its own opening, so nothing is
shared between them; what a warm turn finds cached is its own history, if the
KV cache kept it. Per round it records the client TTFT, prompt_tokens and
usage.prompt_tokens_details.cached_tokens (needs --enable-prompt-tokens-details);
around the warm rounds it reads the server's counters from /metrics
(prefix-cache queries/hits, preemptions, TTFT sum/count).

    # against a running server (key from $VLLM_API_KEY)
    pressure_probe.py --base-url http://127.0.0.1:8000
    # or start one server per KV size, one after the other, and stop each
    pressure_probe.py --launch 8M --launch 64M

Prints one JSON object per configuration on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HOME = os.environ.get(
    "VLLM_GRID_REAL_VLLM_HOME", os.path.expanduser("~/.cache/vllm-grid/real-vllm")
)
# Plain words; each is one or two tokens for Qwen's BPE.
WORDS = (
    "river stone garden window engine number yellow market silver planet"
    " letter summer winter bridge forest castle rocket pencil basket signal"
    " harbor candle meadow thunder violet anchor lantern copper marble falcon"
    " orchard pepper quartz saddle tunnel velvet walnut zephyr beacon cobalt"
).split()


def log(message: str) -> None:
    print(f"[pressure_probe {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(count))


def request(url: str, api_key: str | None, body: dict | None = None, timeout: float = 300):
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    data = None if body is None else json.dumps(body).encode()
    return urllib.request.urlopen(
        urllib.request.Request(url, data=data, headers=headers), timeout=timeout
    )


METRICS = (
    "vllm:prefix_cache_queries_total",
    "vllm:prefix_cache_hits_total",
    "vllm:num_preemptions_total",
    "vllm:time_to_first_token_seconds_sum",
    "vllm:time_to_first_token_seconds_count",
    "vllm:prompt_tokens_total",
)


def scrape(base_url: str) -> dict:
    """The counters above and vllm:cache_config_info's kv_cache_size_tokens."""
    text = request(f"{base_url}/metrics", None, timeout=30).read().decode()
    values: dict = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in METRICS:
            values[name] = values.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        elif name == "vllm:cache_config_info" and "kv_cache_size_tokens=" in line:
            values["kv_cache_size_tokens"] = int(line.split('kv_cache_size_tokens="', 1)[1].split('"', 1)[0])
    return values


def stream_turn(base_url: str, api_key: str | None, messages: list, max_tokens: int) -> dict:
    body = {
        "model": "tiny",
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    ttft = None
    text = []
    usage = None
    with request(f"{base_url}/v1/chat/completions", api_key, body) as response:
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                usage = event["usage"]
            for choice in event.get("choices", []):
                delta = choice.get("delta", {})
                piece = delta.get("content") or delta.get("reasoning") or delta.get("reasoning_content")
                if piece:
                    if ttft is None:
                        ttft = time.perf_counter() - started
                    text.append(piece)
    if usage is None:
        raise RuntimeError("the stream ended without a usage chunk")
    details = usage.get("prompt_tokens_details") or {}
    return {
        "ttft_s": ttft,
        "e2e_s": time.perf_counter() - started,
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "cached_tokens": details.get("cached_tokens"),
        "text": "".join(text),
    }


def run_workload(base_url: str, api_key: str | None, args) -> dict:
    rng = random.Random(args.seed)
    conversations = [
        [
            {
                "role": "system",
                "content": f"Agent {index} of run {args.seed}. " + words(rng, args.system_words),
            }
        ]
        for index in range(args.conversations)
    ]
    rounds = []
    before_warm = None
    started = time.perf_counter()
    for turn in range(args.turns):
        if turn == 1:
            before_warm = scrape(base_url)
        for conversation in conversations:
            conversation.append({"role": "user", "content": words(rng, args.user_words)})
        results: list = [None] * len(conversations)

        def one(index: int) -> None:
            try:
                results[index] = stream_turn(base_url, api_key, conversations[index], args.max_tokens)
            except (urllib.error.URLError, OSError, RuntimeError, ValueError) as error:
                results[index] = {"error": f"{type(error).__name__}: {error}"}

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(conversations))]
        round_started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        failures = [r["error"] for r in results if "error" in r]
        if failures:
            raise RuntimeError(f"turn {turn}: {len(failures)} requests failed, first: {failures[0]}")
        for conversation, result in zip(conversations, results):
            conversation.append({"role": "assistant", "content": result.pop("text")})
        prompt = sum(r["prompt_tokens"] for r in results)
        cached = sum(r["cached_tokens"] or 0 for r in results)
        rounds.append(
            {
                "turn": turn,
                "wall_s": round(time.perf_counter() - round_started, 3),
                "prompt_tokens": prompt,
                "cached_tokens": cached,
                "hit_rate": round(cached / prompt, 4),
                "mean_ttft_s": round(sum(r["ttft_s"] for r in results) / len(results), 4),
                "max_prompt_tokens": max(r["prompt_tokens"] for r in results),
            }
        )
        log(f"turn {turn}: {rounds[-1]}")
    after = scrape(base_url)
    warm = rounds[1:]
    delta = {name: after.get(name, 0.0) - before_warm.get(name, 0.0) for name in METRICS}
    warm_prompt = sum(r["prompt_tokens"] for r in warm)
    return {
        "kv_cache_size_tokens": after.get("kv_cache_size_tokens"),
        "workload": {
            "conversations": args.conversations,
            "turns": args.turns,
            "system_words": args.system_words,
            "user_words": args.user_words,
            "max_tokens": args.max_tokens,
            "seed": args.seed,
            "final_history_tokens_per_conversation": rounds[-1]["max_prompt_tokens"],
            "final_history_tokens_all": rounds[-1]["prompt_tokens"],
        },
        "wall_s": round(time.perf_counter() - started, 1),
        "cold_mean_ttft_s": rounds[0]["mean_ttft_s"],
        "warm_mean_ttft_s": round(sum(r["mean_ttft_s"] for r in warm) / len(warm), 4),
        "warm_hit_rate_usage": round(sum(r["cached_tokens"] for r in warm) / warm_prompt, 4),
        "warm_hit_rate_counters": round(
            delta["vllm:prefix_cache_hits_total"] / max(delta["vllm:prefix_cache_queries_total"], 1), 4
        ),
        "warm_preemptions": delta["vllm:num_preemptions_total"],
        "warm_server_mean_ttft_s": round(
            delta["vllm:time_to_first_token_seconds_sum"]
            / max(delta["vllm:time_to_first_token_seconds_count"], 1),
            4,
        ),
        "warm_counter_deltas": delta,
        "rounds": rounds,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_and_run(kv_bytes: str, args) -> dict:
    """Starts one server (the profile's flags without tool calling, this KV
    size), runs the workload, and stops its process group on every path."""
    port = free_port()
    key = os.urandom(16).hex()
    env = dict(os.environ, VLLM_API_KEY=key, VLLM_HOST_IP="127.0.0.1", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1")
    argv = [
        f"{HOME}/venv/bin/vllm", "serve", "--model", f"{HOME}/models/tiny-qwen3",
        "--served-model-name", "tiny", "--max-model-len", str(args.max_model_len),
        "--kv-cache-memory-bytes", kv_bytes, "--enforce-eager",
        "--enable-prompt-tokens-details", "--reasoning-parser", "qwen3",
        "--host", "127.0.0.1", "--port", str(port),
    ] + args.extra_flag
    log_path = os.path.join(args.log_dir, f"pressure_server_{kv_bytes}.log")
    base_url = f"http://127.0.0.1:{port}"
    log(f"starting {' '.join(argv[2:])} (log {log_path})")
    with open(log_path, "wb") as log_file:
        server = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file,
                                  stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited with {server.returncode}; see {log_path}")
            try:
                request(f"{base_url}/health", None, timeout=2).read()
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server was not ready after 300 s; see {log_path}")
                time.sleep(1)
        log(f"ready on {base_url}")
        result = run_workload(base_url, key, args)
        result["kv_cache_memory_bytes"] = kv_bytes
        return result
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        except ProcessLookupError:
            pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", help="a running server; its key is read from $VLLM_API_KEY")
    parser.add_argument("--launch", action="append", default=[], metavar="KV_BYTES",
                        help="start a server with --kv-cache-memory-bytes KV_BYTES (repeatable)")
    parser.add_argument("--extra-flag", action="append", default=[], help="another serve flag for --launch")
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--log-dir", default=".")
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--system-words", type=int, default=300)
    parser.add_argument("--user-words", type=int, default=100)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if bool(args.base_url) == bool(args.launch):
        parser.error("give either --base-url or --launch")
    # A signal ends the run through the finally blocks (servers stopped).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    if args.base_url:
        print(json.dumps(run_workload(args.base_url.rstrip("/"), os.environ.get("VLLM_API_KEY"), args)))
    for kv_bytes in args.launch:
        print(json.dumps(launch_and_run(kv_bytes, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
