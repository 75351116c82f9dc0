"""Command line of the micro-benchmarks: ``python -m bench.micro [--quick] [--rounds N]``.

Prints a readable table and, as the last line, one JSON object (ops/s per case and the
ours/smpplib ratios). The full run takes about 20 seconds; ``--quick`` about 2.
"""

from __future__ import annotations

import argparse
from typing import Any

from .codec import run


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2-second smoke run")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds (default 5, or 2 with --quick)")
    args = parser.parse_args(argv)
    return run(quick=args.quick, rounds=args.rounds)


if __name__ == "__main__":
    main()
