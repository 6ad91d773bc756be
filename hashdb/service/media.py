"""Hashing media locally (nothing leaves the machine), and turning hashes into queries and submissions."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from hashdb.config import Settings
from hashdb.errors import HashDBError
from hashdb.service import media_hashing, media_pool
from hashdb.service.base import ServiceBase
from hashdb.types import HashValue, MediaHashes, Query, Submission


class MediaMixin(ServiceBase):
    def hash_file(self, path: Path, signals: Sequence[str] | None = None, dihedral: bool = False) -> MediaHashes:
        """Hash one file; `dihedral` (for lookups) adds the PDQs of its 8 rotations/flips, and
        samples a video as a query (see Settings.video_stored_fps)."""
        return media_hashing.hash_media_file(self.settings, path, signals, dihedral)

    def hash_bytes(self, data: bytes, name: str, signals: Sequence[str] | None = None,
                   path: Path | None = None, dihedral: bool = False) -> MediaHashes:
        return media_hashing.hash_media(self.settings, data, name, signals, path, dihedral)

    def hash_files(self, paths: Sequence[Path], signals: Sequence[str] | None = None, dihedral: bool = False,
                   jobs: int | None = None,
                   probes: media_pool.ProbeSwitch | None = None) -> Iterator[MediaHashes | HashDBError]:
        """hash_file of each path, in order; a file that cannot be hashed yields its error.

        Spread over `jobs` processes (default: every core this process may run on). `probes`:
        see media_pool.ProbeSwitch.
        """
        return media_pool.hash_paths(self.settings, paths, signals, dihedral, jobs, probes)

    def query_for(self, hashes: MediaHashes) -> Query:
        """What to look up for a hashed file: every hash, PDQ's alpha and dihedral variants too."""
        if hashes.media_type == "video":
            return Query(hashes.path, hashes.hashes, hashes.frames, tmk=hashes.tmk)
        seen: set[tuple[str, str]] = set()
        unique: list[HashValue] = []
        for value in hashes.hashes + hashes.variants + hashes.dihedral:
            if (value.signal, value.hex) not in seen:
                seen.add((value.signal, value.hex))
                unique.append(value)
        return Query(hashes.path, tuple(unique), derived=hashes.derived, probe=hashes.probe)

    def submission_for(self, hashes: MediaHashes, labels: Sequence[str], **meta: str | None) -> Submission:
        return Submission(
            input=hashes.path, labels=tuple(labels), hashes=hashes.hashes + hashes.variants,
            frames=hashes.frames, media_type=hashes.media_type, derived=hashes.derived, tmk=hashes.tmk,
            keypoints=hashes.keypoints, incident=meta.get("incident"), reference=meta.get("reference"), removed_at=meta.get("removed_at"),
        )


class HashingService(MediaMixin):
    """Hashing alone, without a store or an index (`hashdb hash`): a HashDB's hashing for none
    of its cost, which a folder hashed on every core would pay before its workers start."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
