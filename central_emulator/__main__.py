"""``python -m central_emulator``: the same as the central-emulator console script."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
