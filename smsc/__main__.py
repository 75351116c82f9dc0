"""``python -m smsc`` is the ``smsc`` command."""

import sys

from .cli import main

sys.exit(main())
