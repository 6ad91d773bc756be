"""The local-feature measurement's own matching (scripts/eval_local_features.py), on procedural
pictures: an off-centre crop of a stored picture verifies against it with the transform a crop
has, and its aligned PDQ is near; a picture that shares only its surround with a stored one
(the playing cards of one deck, the icons of one theme) verifies too, and the aligned PDQ is
what rejects it."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def _jpeg(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def test_an_off_centre_crop_verifies_with_a_crops_geometry_and_another_picture_does_not() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import eval_corpus
    import eval_local_features as lf

    pictures = [eval_corpus.load_source(f"synthetic:{seed}") for seed in (1, 2, 3)]
    known = [lf.extract("orb", picture) for picture in pictures]
    stored = lf.build_index(known, 500, nlist=0, nprobe=1)
    greys = [lf.work_copy(picture) for picture in pictures]

    original = pictures[1]
    w, h = original.size
    # 80 % of each side, from the top left corner's 15 % and 5 %: off-centre, as crop_80's "off"
    crop = _jpeg(original.crop((round(0.15 * w), round(0.05 * h), round(0.95 * w), round(0.85 * h))))
    found = lf.look_up(stored, lf.extract("orb", crop))
    assert found and found[0].image == 1
    best = lf.align(found[0], lf.work_copy(crop), greys[1])
    # the crop fills the same work side, so stored = 0.8 x query, unturned
    assert abs(best.scale - 0.8) < 0.03 and abs(best.rotation) < 1 and best.plausible()
    assert best.aligned_share == 0.6 and best.aligned is not None and best.aligned <= 24
    assert lf.Gate(10, aligned=31).passes(best)

    # the stored picture's surround, another picture in its middle half
    framed = original.copy()
    framed.paste(eval_corpus.load_source("synthetic:7").resize((w // 2, h // 2)), (w // 4, h // 4))
    other = _jpeg(framed)
    found = lf.look_up(stored, lf.extract("orb", other))
    shared = [lf.align(r, lf.work_copy(other), greys[r.image]) for r in found if r.image == 1]
    assert shared and lf.Gate(10).passes(shared[0])  # the surround alone: inliers and a plausible geometry
    assert shared[0].aligned is not None and shared[0].aligned > 64
    assert not any(lf.Gate(10, aligned=31).passes(r) for r in shared)
