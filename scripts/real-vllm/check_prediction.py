#!/usr/bin/env python3
"""Checks the memory prediction against what real vLLM logged.

    check_prediction.py run RUN_DIR
    check_prediction.py pair PREDICTIONS_JSON CONFIG_NAME SERVER_LOG

`run`: every completed config of a search (`logs/<run-id>` of
`vllm-grid search`) carries its prediction in `results/<id>.json`
(`prediction.kv_capacity_tokens`); its server log (`<config>/container.log`)
has vLLM's `CPU KV cache size: N tokens` (or `GPU KV cache size`). With the
profile's `--kv-cache-memory-bytes` the prediction is exact by construction.

`pair`: the prediction of CONFIG_NAME in `vllm-grid plan --json` output
against one server's log, for a setting whose KV memory vLLM derives from
`--gpu-memory-utilization` (the worker-RSS estimate enters it).

Each checked capacity must be within TOLERANCE of the logged one. Prints one
line per check and a summary `N passed, N failed`; exits 1 when any failed
or when nothing could be compared. Uses only the standard library.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

TOLERANCE = 0.10
KV_LINE = re.compile(r"(?:CPU|GPU|[A-Z]+) KV cache size: ([\d,]+) tokens")


def logged_capacity(log: Path) -> int | None:
    """The last `KV cache size: N tokens` of a server log."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace").replace("\r", "")
    except OSError:
        return None
    found = KV_LINE.findall(text)
    return int(found[-1].replace(",", "")) if found else None


class Checker:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def compare(self, what: str, predicted: int | None, logged: int | None) -> None:
        if predicted is None or logged is None:
            self.failed += 1
            print(f"FAIL {what}: predicted {predicted}, logged {logged}")
            return
        error = (predicted - logged) / logged
        ok = abs(error) <= TOLERANCE
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(
            f"{'ok  ' if ok else 'FAIL'} {what}: predicted {predicted:,} tokens, "
            f"logged {logged:,}, error {error * 100:+.2f} % (tolerance {TOLERANCE * 100:.0f} %)"
        )

    def finish(self) -> None:
        print(f"{self.passed} passed, {self.failed} failed")
        if self.failed or not self.passed:
            sys.exit(1)


def load(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        sys.exit(f"check_prediction: cannot read {path}: {error}")


def check_run(run_dir: Path) -> None:
    checker = Checker()
    results = sorted((run_dir / "results").glob("*.json"))
    if not results:
        sys.exit(f"check_prediction: no results in {run_dir}")
    for path in results:
        result = load(path)
        name = result["config"]["name"]
        if result.get("outcome") != "completed":
            print(f"skip {name}: {result.get('outcome')} (no capacity logged)")
            continue
        prediction = result.get("prediction") or {}
        if prediction.get("verdict") != "fits":
            checker.compare(f"{name} predicted to fit", None, None)
            continue
        checker.compare(
            f"{name} (its search's server)",
            prediction.get("kv_capacity_tokens"),
            logged_capacity(run_dir / name / "container.log"),
        )
    checker.finish()


def check_pair(predictions: Path, name: str, log: Path) -> None:
    checker = Checker()
    document = load(predictions)
    config = next((c for c in document.get("configs", []) if c.get("name") == name), None)
    if config is None:
        sys.exit(f"check_prediction: {predictions} has no config {name!r}")
    prediction = config["prediction"]
    if prediction.get("verdict") != "fits":
        print(f"FAIL {name}: predicted {prediction.get('verdict')}: {prediction}")
        sys.exit(1)
    checker.compare(f"{name} (utilization-based)", prediction.get("kv_capacity_tokens"), logged_capacity(log))
    checker.finish()


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[1] == "run":
        check_run(Path(argv[2]))
    elif len(argv) == 5 and argv[1] == "pair":
        check_pair(Path(argv[2]), argv[3], Path(argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
