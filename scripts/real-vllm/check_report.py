#!/usr/bin/env python3
"""Checks the report of a real-vLLM search (grid_search_configs.cpu.json).

    check_report.py RUN_DIR

RUN_DIR is `logs/<run-id>` of `vllm-grid search --backend process` against
profiles/cpu-tiny.yml. The checks are what the real-vLLM CI tier promises:

  * the run used real vLLM (not the simulator) through the process backend,
    and the report names a champion;
  * every prefix-caching config was measured and shows a KV-cache
    acceleration above 1 that the server's own counters confirm
    (vllm:prefix_cache_hits_total grew), and the champion is one of them;
  * every config without prefix caching was measured, and the server
    confirms no cache hit;
  * each config that must fail at startup failed with the expected
    diagnosis class (EXPECTED_FAILURES below);
  * the battery read the real metric names: the kv_cache benchmark's
    /metrics snapshots hold vllm:prefix_cache_queries_total and
    vllm:prefix_cache_hits_total values (absent names would be null);
  * the pressured KV-cache workload separates the --kv-cache-memory-bytes
    pair (PRESSURE_PAIR below): the small cache's KV capacity
    (vllm:cache_config_info) is below the workload and the large one's
    above, the large cache keeps most warm-turn prompt tokens cached, the
    small one at least PRESSURE_HIT_RATE_GAP fewer, and the large cache's
    pressured acceleration is the higher. The figures are read from the
    report's per-config keys (kv_cache_pressure_acceleration,
    pressure_warm_hit_rate, kv_capacity_tokens) and, where the report lacks
    them, from results/<id>.json `measurement.kv_cache_pressure`.

Prints one line per check and a summary line `N passed, N failed`; exits 1
when any check failed. Uses only the standard library.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# Config name -> the failure class its startup must be diagnosed with.
EXPECTED_FAILURES = {"chunked_off_small_batch": "invalid_argument"}
# The --kv-cache-memory-bytes pair: (small, large) and the capacity in tokens
# each must report (the tiny model's KV is 1 KiB a token: 2 layers x 2 KV
# heads x 64 dims x K and V x 2 bytes). The large side is the grid config with
# the profile's 1 GiB, so the pair costs the tier one server more.
PRESSURE_PAIR = (("pressure_kv_8m", 8192), ("chunked-on_prefix-on", 1048576))
# Real vLLM CPU, 16 conversations x 10 turns: 16 MiB kept 4.4-4.7 % of the
# warm turns' tokens, 128 MiB 86 %. The pair must differ by at least this.
PRESSURE_HIT_RATE_GAP = 0.3


class Checker:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, condition: bool, what: str, detail: str = "") -> bool:
        if condition:
            self.passed += 1
            print(f"ok   {what}")
        else:
            self.failed += 1
            print(f"FAIL {what}{': ' + detail if detail else ''}")
        return condition


def load(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        sys.exit(f"check_report: cannot read {path}: {error}")


def prefix_caching(result: dict) -> bool | None:
    """The config's --enable-prefix-caching setting; None when left at the default (on)."""
    return result["config"]["settings"].get("enable_prefix_caching")


def kv_cache_metrics(run_dir: Path, result: dict) -> list[dict]:
    """The kv_cache benchmark's /metrics snapshots (before and after) of every repeat."""
    snapshots = []
    for repeat in result.get("repeats", []):
        battery = load(run_dir / repeat["output_dir"] / "kv_cache.json")
        text = json.dumps(battery)
        # The snapshot shape is grid-bench's MetricsSnapshot; look it up by key
        # wherever the benchmark report nests it.
        stack = [battery]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if "prefix_cache_queries_total" in node and "prefix_cache_hits_total" in node:
                    snapshots.append(node)
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        if not snapshots:
            print(f"note {repeat['output_dir']}/kv_cache.json has no metrics snapshot: {text[:300]}")
    return snapshots


def number(value) -> float | None:
    """A figure that is a number or an Estimate ({median, ...})."""
    if isinstance(value, dict):
        value = value.get("median")
    return float(value) if isinstance(value, (int, float)) else None


def pressure_figures(config: dict, result: dict | None) -> dict:
    """acceleration, hit_rate, capacity of one config: the report's keys first,
    else the result file's repeats (median acceleration, mean hit rate)."""
    figures = {
        "acceleration": number(config.get("kv_cache_pressure_acceleration")),
        "hit_rate": number(config.get("pressure_warm_hit_rate")),
        "capacity": number(config.get("kv_capacity_tokens")),
        "source": "report.json",
    }
    if all(figures[key] is not None for key in ("acceleration", "hit_rate", "capacity")):
        return figures
    measured = [
        repeat["measurement"]["kv_cache_pressure"]
        for repeat in (result or {}).get("repeats", [])
        if (repeat.get("measurement") or {}).get("kv_cache_pressure")
    ]
    if not measured:
        return figures
    def pick(key: str, combine) -> float | None:
        values = [number(m.get(key)) for m in measured]
        values = [v for v in values if v is not None]
        return combine(values) if values else None
    median = lambda values: sorted(values)[len(values) // 2]
    mean = lambda values: sum(values) / len(values)
    for key, source_key, combine in (
        ("acceleration", "acceleration", median),
        ("hit_rate", "warm_hit_rate", mean),
        ("capacity", "kv_capacity_tokens", median),
    ):
        if figures[key] is None:
            figures[key] = pick(source_key, combine)
            figures["source"] = "results/<id>.json"
    return figures


def check_pressure_pair(c: Checker, configs: dict, results: dict) -> None:
    (small, small_capacity), (large, large_capacity) = PRESSURE_PAIR
    figures = {}
    for name, capacity in PRESSURE_PAIR:
        config = configs.get(name)
        if not c.check(config is not None, f"{name}: in the report"):
            return
        result = results.get(name)
        if not c.check(result is not None and result["outcome"] == "completed", f"{name}: battery completed", f"result={None if result is None else result['outcome']}"):
            return
        figures[name] = pressure_figures(config, result)
        print(f"note {name}: pressured figures {figures[name]}")
        c.check(
            figures[name]["capacity"] == capacity,
            f"{name}: KV capacity {capacity} tokens from vllm:cache_config_info",
            f"kv_capacity_tokens={figures[name]['capacity']}",
        )
    s, l = figures[small], figures[large]
    c.check(
        l["hit_rate"] is not None and l["hit_rate"] >= 0.5,
        f"{large}: the pressured workload's warm turns stay mostly cached ({l['hit_rate']})",
        f"pressure_warm_hit_rate={l['hit_rate']}",
    )
    c.check(
        s["hit_rate"] is not None and l["hit_rate"] is not None and s["hit_rate"] <= l["hit_rate"] - PRESSURE_HIT_RATE_GAP,
        f"{small}: eviction under pressure: warm hit rate {s['hit_rate']} at least {PRESSURE_HIT_RATE_GAP} below {large}'s {l['hit_rate']}",
        f"{small}={s['hit_rate']}, {large}={l['hit_rate']}",
    )
    c.check(
        s["acceleration"] is not None and l["acceleration"] is not None and l["acceleration"] > s["acceleration"],
        f"{large}: pressured acceleration x{l['acceleration']} above {small}'s x{s['acceleration']}",
        f"{small}={s['acceleration']}, {large}={l['acceleration']}",
    )


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    run_dir = Path(sys.argv[1])
    report = load(run_dir / "report.json")
    results = {}
    for path in sorted((run_dir / "results").glob("*.json")):
        result = load(path)
        results[result["config"]["name"]] = result
    configs = {config["name"]: config for config in report["configs"]}
    c = Checker()

    c.check(report.get("simulated") is False, "the run used real vLLM, not the simulator", f"simulated={report.get('simulated')}")
    c.check(report.get("backend") == "process", "the run used the process backend", f"backend={report.get('backend')}")
    champion = report.get("champion")
    c.check(champion is not None, "the report names a champion", "champion is null")

    for name, expected_class in EXPECTED_FAILURES.items():
        config = configs.get(name)
        if not c.check(config is not None, f"{name}: in the report"):
            continue
        c.check(config["status"] == "rejected", f"{name}: rejected (it must fail at startup)", f"status={config['status']}")
        c.check(
            config.get("failure_class") == expected_class,
            f"{name}: diagnosed as {expected_class}",
            f"failure_class={config.get('failure_class')!r}, reason={config.get('reason')!r}",
        )
        result = results.get(name, {})
        c.check(result.get("outcome") == "launch_failed", f"{name}: the server never became ready", f"outcome={result.get('outcome')}")

    check_pressure_pair(c, configs, results)
    small = PRESSURE_PAIR[0][0]
    measured = [name for name in configs if name not in EXPECTED_FAILURES and name != small]
    c.check(len(measured) == 4, "four grid configs (prefix caching x chunked prefill)", f"found {measured}")
    for name in measured:
        config, result = configs[name], results.get(name)
        if not c.check(result is not None and result["outcome"] == "completed", f"{name}: battery completed", f"result={None if result is None else result['outcome']}"):
            continue
        secondary = config["secondary"]
        acceleration = config.get("kv_cache_acceleration")
        snapshots = kv_cache_metrics(run_dir, result)
        c.check(
            bool(snapshots)
            and all(s.get("prefix_cache_queries_total") is not None and s.get("prefix_cache_hits_total") is not None for s in snapshots),
            f"{name}: /metrics has vllm:prefix_cache_queries_total and vllm:prefix_cache_hits_total",
            f"snapshots={snapshots}",
        )
        if prefix_caching(result) is False:
            c.check(
                secondary.get("cache_confirmed_by_server") is not True,
                f"{name}: no cache hit confirmed by the server (prefix caching off)",
                f"cache_confirmed_by_server={secondary.get('cache_confirmed_by_server')}",
            )
        else:
            c.check(config["status"] == "valid", f"{name}: valid (passed every gate)", f"status={config['status']}, reason={config.get('reason')!r}")
            c.check(
                acceleration is not None and acceleration > 1.0,
                f"{name}: KV-cache acceleration above 1 ({acceleration})",
                f"kv_cache_acceleration={acceleration}",
            )
            c.check(
                secondary.get("cache_confirmed_by_server") is True,
                f"{name}: acceleration confirmed by the server's prefix-cache counters",
                f"cache_confirmed_by_server={secondary.get('cache_confirmed_by_server')}",
            )
    if champion is not None:
        champion_result = results.get(champion["name"])
        c.check(
            champion_result is not None and prefix_caching(champion_result) is not False,
            f"the champion ({champion['name']}) has prefix caching on",
        )

    print(f"check_report: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
