"""Run every benchmark and print the figures (each a median over several runs)."""

from __future__ import annotations

import json
import os

from bench import drain, freshness


def main() -> None:
    figures = {"machine": {"cores": os.cpu_count()}, **freshness.run(), **drain.run()}
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
