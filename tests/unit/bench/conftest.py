"""The bench lives at the repository root (bench/), outside the installed package."""

from __future__ import annotations

import sys

from tests.support.paths import REPO

ROOT = REPO
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
