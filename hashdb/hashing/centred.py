"""Centred crops' geometry: the boxes crops.py stores a PDQ of, and the largest of them a turned
copy still fills once turned back (derived.py hashes that one for a lookup). Apart from both so
that neither imports the other. A lookup's windows (crops.window_boxes) are where these boxes
can sit inside an off-centre crop."""

from __future__ import annotations

import math

# Share of each side kept, largest first.
SHARES = (0.95, 0.9, 0.85, 0.8)


def centre_boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """(left, top, right, bottom) of each centred crop, in SHARES order."""
    boxes = []
    for share in SHARES:
        w, h = round(width * share), round(height * share)
        left, top = (width - w) // 2, (height - h) // 2
        boxes.append((left, top, left + w, top + h))
    return boxes


def fitting_box(width: int, height: int, degrees: float) -> tuple[int, int, int, int] | None:
    """The largest of centre_boxes that a picture turned by `degrees` inside its frame (canvas
    kept) still fills once turned back: an upright w x h box fits in the turned W x H frame
    when w cos + h sin <= W and w sin + h cos <= H. None when even the smallest does not."""
    c, s = abs(math.cos(math.radians(degrees))), abs(math.sin(math.radians(degrees)))
    for share, box in zip(SHARES, centre_boxes(width, height)):
        if share * (width * c + height * s) <= width and share * (width * s + height * c) <= height:
            return box
    return None
