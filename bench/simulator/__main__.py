"""``python -m bench.simulator``: same as the ``smsc-sim`` console script."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
