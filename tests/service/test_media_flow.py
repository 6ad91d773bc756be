"""Files through the service: variants stored for transparency, dihedral lookups, video."""

from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image

from hashdb.types import HashValue, Query, Submission

from support import principal

LABELS = ("glorification",)


def submit_file(service, actor, path: Path):
    hashes = service.hash_file(path)
    return service.submit([service.submission_for(hashes, LABELS)], actor)[0]


def lookup_file(service, actor, path: Path, dihedral: bool = False):
    query = service.query_for(service.hash_file(path, dihedral=dihedral))
    return service.lookup([query], actor)[0]


def test_flattened_reupload_of_a_transparent_image_matches(service, media, tmp_path):
    alice = principal(service, "alice", "contributor")
    submit_file(service, alice, media / "logo_rgba.png")
    rgba = Image.open(media / "logo_rgba.png").convert("RGBA")
    for background in ("white", "black"):
        flat = Image.new("RGBA", rgba.size, background)
        flat.alpha_composite(rgba)
        path = tmp_path / f"flat_{background}.jpg"
        flat.convert("RGB").save(path, quality=90)
        result = lookup_file(service, alice, path)
        assert any(m.signal == "pdq" and m.distance <= 31 for m in result.matches), background


def test_rotated_copy_matches_only_with_dihedral_lookup(service, media):
    alice = principal(service, "alice", "contributor")
    submit_file(service, alice, media / "chelsea.jpg")
    rotated = media / "chelsea_rotation.jpg"
    assert not any(m.signal == "pdq" for m in lookup_file(service, alice, rotated).matches)
    assert any(m.signal == "pdq" for m in lookup_file(service, alice, rotated, dihedral=True).matches)


def test_a_lookup_queries_each_turned_pdq_near_pdqhash_of_the_turned_image_and_stores_none(service, media):
    # The 7 rotated/mirrored PDQs of a lookup come from one filter of the image: each within a
    # few bits of pdqhash's PDQ of the turned image; only queried, never part of a submission.
    import numpy as np
    import pdqhash

    from hashdb.hashing.pdq import PdqSignal, bits_to_hex

    hashed = service.hash_file(media / "chelsea.jpg", dihedral=True)
    ops = (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270,
           Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.TRANSPOSE,
           Image.Transpose.TRANSVERSE)
    with Image.open(media / "chelsea.jpg") as image:
        upright = image.convert("RGB")
    turned = [bits_to_hex(pdqhash.compute(np.asarray(upright.transpose(op)))[0]) for op in ops]
    assert len(hashed.dihedral) == 7
    assert all(PdqSignal().distance(v.hex, want) <= 4 for v, want in zip(hashed.dihedral, turned))
    assert hashed.get("pdq").hex == bits_to_hex(pdqhash.compute(np.asarray(upright))[0])
    query = service.query_for(hashed)
    assert all(v in query.hashes for v in hashed.dihedral)
    stored = service.submission_for(hashed, LABELS).hashes
    assert not any(v in stored for v in hashed.dihedral)


def test_reencoded_video_matches_with_both_percentages(service, media):
    alice = principal(service, "alice", "contributor")
    stored = submit_file(service, alice, media / "clip.mp4")
    result = lookup_file(service, alice, media / "clip_reencoded.mp4")
    [video] = [m for m in result.matches if m.signal == "vpdq"]
    assert video.id in stored.ids and video.video is not None
    assert video.video.query_pct >= 80 and video.video.stored_pct > 0
    other = lookup_file(service, alice, media / "other.mp4")
    assert not other.matched


def test_query_input_is_echoed(service):
    alice = principal(service, "alice", "contributor")
    [result] = service.lookup([Query("  as given  ")], alice)
    assert result.input == "  as given  " and not result.matched


def test_a_hash_pytx_shares_after_unletterboxing_matches_the_letterboxed_file(service, vectors):
    # `threatexchange hash photo --photo-preprocess unletterbox` crops black bars and
    # re-encodes the crop before hashing; members who share such hashes must be found when
    # the letterboxed file itself is looked up. The whole-file PDQ is ~140 bits from them.
    with (vectors / "pdq" / "expected.csv").open(newline="") as handle:
        shared = [row["pdq_hex"] for row in csv.DictReader(handle)
                  if row["source"].startswith("pytx-exact-after-unletterbox")]
    assert len(shared) == 2
    alice = principal(service, "alice", "contributor")
    ids = {service.submit([Submission(f"pytx {n}", LABELS, (HashValue("pdq", hex_value, 80),))], alice)[0].ids[0]
           for n, hex_value in enumerate(shared)}
    result = lookup_file(service, alice, vectors / "pdq" / "pytx" / "letterboxed_sample-b.jpg")
    found = {m.id: m for m in result.matches if m.signal == "pdq"}
    assert set(found) == ids
    assert all(m.via is not None and m.distance <= 31 for m in found.values())


def test_meta_sample_video_with_a_nearly_flat_frame_hashes_cleanly(service, vectors):
    # Frame 52 of the doorknob sample is one grey with a small detail: the bar detector's
    # peels crossed there (a NaN colour, a RuntimeWarning, which this suite makes an error).
    hashed = service.hash_file(vectors / "vpdq" / "videos" / "doorknob-hd-no-bar.mp4")
    assert hashed.media_type == "video" and hashed.frames
