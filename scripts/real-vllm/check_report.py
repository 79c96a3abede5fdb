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
    vllm:prefix_cache_hits_total values (absent names would be null).

Prints one line per check and a summary line `N passed, N failed`; exits 1
when any check failed. Uses only the standard library.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# Config name -> the failure class its startup must be diagnosed with.
EXPECTED_FAILURES = {"chunked_off_small_batch": "invalid_argument"}


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

    measured = [name for name in configs if name not in EXPECTED_FAILURES]
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
