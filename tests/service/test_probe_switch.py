"""A lookup's probes can be turned off after its workers started (media_pool.ProbeSwitch): the
CLI opens its database while they hash, and a database without keypoints wants none."""

from __future__ import annotations

import shutil

from hashdb.config import Settings
from hashdb.service import HashingService
from hashdb.service.media_pool import ProbeSwitch


def test_files_hashed_after_the_switch_goes_off_have_no_probe(media, tmp_path):
    paths = []
    for n in range(16):
        path = tmp_path / f"{n:02d}.jpg"
        shutil.copy(media / "astronaut.jpg", path)
        paths.append(path)
    hasher = HashingService(Settings())
    on = list(hasher.hash_files(paths[:2], dihedral=True, jobs=2, probes=ProbeSwitch()))
    assert all(h.probe is not None for h in on)
    probes = ProbeSwitch()
    answers = hasher.hash_files(paths, dihedral=True, jobs=2, probes=probes)  # the workers start
    probes.off()
    hashed = list(answers)
    assert hashed[-1].probe is None  # the workers read the switch for each file
    assert all(h.hashes == hashed[0].hashes for h in hashed)  # nothing else changed
    single = list(hasher.hash_files(paths[:1], dihedral=True, probes=probes))  # in this process
    assert single[0].probe is None
