"""``smsc-bench``: the tenant load generator, its report, and the gateway/simulator it drives.

Run ``smsc-bench --standard`` (or ``python -m bench.load --standard``) for the standard
scenario; ``smsc-bench --help`` lists every option. See BENCHMARKS.md for measured numbers.
"""

from __future__ import annotations

__all__: list[str] = []  # the entry point is bench.load.cli:main
