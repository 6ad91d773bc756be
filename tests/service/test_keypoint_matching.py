"""A keypoint match through the service: its distance is the aligned PDQ's, so a caller's tighter
pdq threshold holds for it as for every PDQ match."""

from __future__ import annotations

from PIL import Image

from hashdb.service import HashDB

from support import principal

LABELS = ("glorification",)


def test_a_tighter_pdq_threshold_holds_for_aligned_matches(service: HashDB, media, tmp_path):
    alice = principal(service, "alice", "contributor")
    [result] = service.submit([service.submission_for(service.hash_file(media / "chelsea.jpg"), LABELS)], alice)
    photo = Image.open(media / "chelsea.jpg").convert("RGB")
    width, height = photo.size
    crop = tmp_path / "crop.jpg"
    photo.crop((0, round(0.2 * height), round(0.8 * width), height)).save(crop, quality=90)
    query = service.query_for(service.hash_file(crop, dihedral=True))
    [found] = service.lookup([query], alice)
    [match] = [m for m in found.matches if m.via == "aligned"]
    assert match.distance >= 1
    assert not service.lookup([query], alice, {"pdq": match.distance - 1})[0].matched
    assert service.lookup([query], alice, {"pdq": match.distance})[0].matched
