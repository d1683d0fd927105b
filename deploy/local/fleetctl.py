#!/usr/bin/env python3
"""fleetctl: local infrastructure supervisor for the MoE Sovereign Fleet (no Docker).

    .venv/bin/python deploy/local/fleetctl.py install|up|down|status|logs [components...]

Importable (with deploy/local on sys.path): `fleetctl.ensure_up([...])`, `fleetctl.ENDPOINTS`.
See deploy/local/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleetlib.api import ENDPOINTS, endpoints, ensure_up
from fleetlib.cli import main

__all__ = ["ENDPOINTS", "endpoints", "ensure_up", "main"]

if __name__ == "__main__":
    sys.exit(main())
