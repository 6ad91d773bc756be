"""One blueprint per resource; each view parses, calls one HashDB method, returns output.* JSON."""

from __future__ import annotations

from flask import current_app


def max_batch() -> int:
    return int(current_app.config["MAX_BATCH"])
