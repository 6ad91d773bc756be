"""Store readers for the parts of a record kept in their own tables: a video's frames, an
image's derived hashes and keypoints, in the SQL both dialects speak (see sql.py). A mixin over
SQLStore.
"""

from __future__ import annotations

from collections.abc import Sequence

from hashdb.store.sql import SQLStore, check_limit
from hashdb.types import DerivedHash, FrameHash, HashValue


class RecordPartsSQL(SQLStore):
    def frame_records(self, frame_ids: Sequence[int]) -> dict[int, int]:
        unique = list(dict.fromkeys(int(i) for i in frame_ids))
        rows = self._rows_in("SELECT id, record_id FROM video_frames WHERE id IN ({marks})", (), unique)
        return {int(r["id"]): int(r["record_id"]) for r in rows}

    def video_frames(self, record_ids: Sequence[int]) -> dict[int, list[tuple[int, str, int | None]]]:
        unique = list(dict.fromkeys(int(i) for i in record_ids))
        out: dict[int, list[tuple[int, str, int | None]]] = {i: [] for i in unique}
        rows = self._rows_in("SELECT id, record_id, value, quality FROM video_frames"
                             " WHERE record_id IN ({marks}) ORDER BY id", (), unique)
        for r in rows:
            out[int(r["record_id"])].append((int(r["id"]), r["value"], r["quality"]))
        return out

    def timed_frames(self, record_ids: Sequence[int]) -> dict[int, list[FrameHash]]:
        # Apart from video_frames: a frame search needs no times.
        unique = list(dict.fromkeys(int(i) for i in record_ids))
        out: dict[int, list[FrameHash]] = {i: [] for i in unique}
        rows = self._rows_in("SELECT record_id, value, quality, timestamp FROM video_frames"
                             " WHERE record_id IN ({marks}) ORDER BY id", (), unique)
        for r in rows:
            frames = out[int(r["record_id"])]
            frames.append(FrameHash(len(frames), float(r["timestamp"]),
                                    HashValue("pdq", str(r["value"]), r["quality"])))
        return out

    def derived_hashes(self, record_ids: Sequence[int]) -> dict[int, list[tuple[int, DerivedHash]]]:
        unique = list(dict.fromkeys(int(i) for i in record_ids))
        out: dict[int, list[tuple[int, DerivedHash]]] = {i: [] for i in unique}
        rows = self._rows_in("SELECT id, record_id, via, value, quality, share, colours FROM derived_hashes"
                             " WHERE record_id IN ({marks}) ORDER BY id", (), unique)
        for r in rows:
            out[int(r["record_id"])].append(
                (int(r["id"]), DerivedHash(str(r["via"]), HashValue("pdq", str(r["value"]), r["quality"]),
                                           _share(r["share"]), _colours(r["colours"]))))
        return out

    def tmk_features(self, record_ids: Sequence[int]) -> dict[int, bytes]:
        unique = list(dict.fromkeys(int(i) for i in record_ids))
        rows = self._rows_in("SELECT record_id, features FROM tmk_hashes WHERE record_id IN ({marks})", (), unique)
        return {int(r["record_id"]): bytes(r["features"]) for r in rows}

    def tmk_averages(self, after: int, limit: int) -> list[tuple[int, int, bytes]]:
        rows = self._rows("SELECT id, record_id, average FROM tmk_hashes WHERE id > ? ORDER BY id LIMIT ?",
                          (int(after), int(limit)))
        return [(int(r["id"]), int(r["record_id"]), bytes(r["average"])) for r in rows]

    def keypoints_of(self, record_ids: Sequence[int]) -> dict[int, bytes]:
        unique = list(dict.fromkeys(int(i) for i in record_ids))
        rows = self._rows_in("SELECT record_id, data FROM image_keypoints WHERE record_id IN ({marks})", (), unique)
        return {int(r["record_id"]): bytes(r["data"]) for r in rows}

    def keypoint_rows(self, after: int, limit: int) -> list[tuple[int, int, bytes]]:
        check_limit("limit", limit)
        rows = self._rows("SELECT id, record_id, data FROM image_keypoints WHERE id > ? ORDER BY id LIMIT ?",
                          (int(after), int(limit)))
        return [(int(r["id"]), int(r["record_id"]), bytes(r["data"])) for r in rows]

    def derived_records(self, derived_ids: Sequence[int]) -> dict[int, tuple[int, str, float | None, str | None]]:
        unique = list(dict.fromkeys(int(i) for i in derived_ids))
        rows = self._rows_in("SELECT id, record_id, via, share, colours FROM derived_hashes WHERE id IN ({marks})",
                             (), unique)
        return {int(r["id"]): (int(r["record_id"]), str(r["via"]), _share(r["share"]), _colours(r["colours"]))
                for r in rows}


def _share(raw: object) -> float | None:
    return None if raw is None else float(raw)  # type: ignore[arg-type]


def _colours(raw: object) -> str | None:
    return None if raw is None else str(raw)
