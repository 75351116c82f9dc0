"""``python -m bench.load``: same as the ``smsc-bench`` console script."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
