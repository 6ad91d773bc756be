"""The derived hashes of a few fixtures, held to the values databases already store.

Stored records carry derived hashes (regions, deskewed copies, centred crops, corner masks), and
a new hashdb must derive the same ones from the same file, or a re-upload stops matching what
an older one stored. The values below were made by hashdb at 0bf714a, before the work copy's
luma, summed-area reads and the detectors' counts were shared or compiled; each is the first 16
hex digits of the SHA-256 of derived_json's JSON (every via, PDQ, quality, share and colour
layout, in order). A speed change must leave them as they are: a new value here means every
stored record of such an image would have to be hashed again. A lookup's values change only
with what a lookup computes (nothing is stored from them): they were made again when a lookup
began to hash its row spans (regions.row_spans), the stored ones left as they were.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
from PIL import Image

import numpy as np

from hashdb.config import Settings
from hashdb.hashing import crops, deskew, regions
from hashdb.hashing import media as media_io
from hashdb.hashing.derived import WINDOW, derived_json, work_copy
from hashdb.hashing.pdq import PdqSignal
from hashdb.service.media_hashing import hash_media

# name -> (stored, a lookup's): digest, count and kinds of derived hashes.
EXPECTED = {
    "astronaut_screenshot.jpg": (("37e731fe1d3801b5", 10, "content cropped masked trimmed"),
                                 ("7b5f1381db0183ea", 15, "content masked trimmed")),
    "chelsea_caption.jpg": (("e09f122890b5b54b", 10, "content cropped masked trimmed"),
                            ("dad604337ccd3bed", 10, "content masked trimmed")),
    "coffee_border.jpg": (("3f617968be087340", 9, "cropped masked trimmed"),
                          ("1b331fab0c2df599", 9, "content masked trimmed")),
    "logo_rgba.png": (("d5882456c2d2e4b5", 9, "cropped masked trimmed"),
                      ("28bc8308d66bbc30", 8, "content masked trimmed")),
    "rocket_resize.jpg": (("bd13ba833f5800c3", 9, "content cropped masked"), ("934c6cf1193d4d90", 7, "content masked")),
    "camera.png": (("9130f181a0ff6e7a", 9, "cropped masked trimmed"),
                   ("7581a1d1e5bbde90", 8, "content masked trimmed")),
    # chelsea.jpg turned 4 degrees in its frame (Pillow, nearest neighbour, white corners), as PNG.
    "turned": (("b8d00e57f3ad41d6", 9, "cropped deskewed masked"), ("b43a8d1d1564d3ee", 6, "deskewed masked")),
}


def _file(media: Path, name: str) -> bytes:
    if name != "turned":
        return (media / name).read_bytes()
    with Image.open(media / "chelsea.jpg") as image:
        turned = image.convert("RGB").rotate(4, resample=Image.Resampling.NEAREST, fillcolor=(255, 255, 255))
    out = io.BytesIO()
    turned.save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_derived_hashes_are_the_ones_already_stored(media: Path, name: str) -> None:
    data = _file(media, name)
    for lookup, (digest, count, vias) in zip((False, True), EXPECTED[name], strict=True):
        # A lookup's windows came after those values (test_windows_are_each_boxs_own_pdq).
        derived = derived_json(tuple(d for d in hash_media(Settings(), data, name, dihedral=lookup).derived
                                     if d.via != WINDOW))
        assert (len(derived), " ".join(sorted({d["via"] for d in derived}))) == (count, vias), lookup
        assert hashlib.sha256(json.dumps(derived).encode()).hexdigest()[:16] == digest, lookup


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_windows_are_each_boxs_own_pdq(media: Path, name: str) -> None:
    # Each window is the PDQ of its box of the lookup's 256-pixel copy hashed on its own (no
    # luma shared between windows), in window_boxes' order, repeats and flat boxes left out.
    data = _file(media, name)
    windows = [d for d in hash_media(Settings(), data, name, dihedral=True).derived if d.via == WINDOW]
    shown = media_io.decode_image(data, Settings().limits).shown  # what hash_media hashes: upright, flattened
    small = regions.reduced(work_copy(shown), deskew.WORK_SIDE)
    height, width = small.shape[:2]
    alone = [PdqSignal().compute_array(np.ascontiguousarray(small[top:bottom, left:right])).hex
             for left, top, right, bottom in crops.window_boxes(width, height)]
    assert windows and [d.hash.hex for d in windows] == [h for h in dict.fromkeys(alone)
                                                         if h in {d.hash.hex for d in windows}]
    assert len(windows) >= crops.WINDOW_COUNT - 2
