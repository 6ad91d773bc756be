"""A video's TMK+PDQF hash, computed by tmkpy (Meta's TMK C++ behind SWIG), which decodes through
the `ffmpeg` program at 15 frames a second and 64x64 pixels. Both are optional: without them
`unavailable()` says what is missing and nothing else changes.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

from hashdb.errors import ToolMissing, UnsupportedMedia
from hashdb.hashing.tmk import parse_tmk

# tmk builds a shell command line from the program and file paths without quoting them: only a
# path of these characters is handed over (the video goes through a fixed-name link).
_SAFE_PATH = re.compile(r"^[A-Za-z0-9/._+-]+$")
# FFmpeg's banner and progress go to this process's stderr; tmkpy has no switch for it.
_STDERR_LOCK = threading.Lock()


def _ffmpeg() -> str | None:
    found = os.environ.get("HASHDB_FFMPEG") or shutil.which("ffmpeg")
    return str(Path(found).resolve()) if found else None


def unavailable() -> str | None:
    """Why a TMK cannot be computed here, or None when it can."""
    try:
        import tmkpy  # noqa: F401
    except ImportError:
        return "tmk needs the tmkpy package (pip install 'hashdb[tmk]'; it builds with Debian's swig)"
    ffmpeg = _ffmpeg()
    if ffmpeg is None or not os.access(ffmpeg, os.X_OK):
        return "tmk needs the ffmpeg program on PATH (Debian: apt-get install ffmpeg) or in HASHDB_FFMPEG"
    if not _SAFE_PATH.match(ffmpeg):
        return f"tmk cannot run ffmpeg from {ffmpeg!r}: tmkpy passes it to a shell unquoted"
    return None


def hash_tmk_bytes(data: bytes) -> bytes:
    """`hash_tmk` of a video in memory (tmkpy reads only files)."""
    fd, name = tempfile.mkstemp(prefix="hashdb-tmk-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return hash_tmk(name)
    finally:
        os.unlink(name)


def hash_tmk(path: str | os.PathLike[str]) -> bytes:
    """The `.tmk` bytes of the video at `path` (checked to be a video by the caller first)."""
    reason = unavailable()
    if reason is not None:
        raise ToolMissing(reason)
    import tmkpy

    ffmpeg = _ffmpeg()
    assert ffmpeg is not None  # unavailable() checked it
    source = Path(path).resolve()
    with tempfile.TemporaryDirectory(prefix="hashdb-tmk-") as folder:
        link, out = Path(folder) / "video", Path(folder) / "video.tmk"
        if not (_SAFE_PATH.match(str(link)) and _SAFE_PATH.match(str(out))):
            raise ToolMissing(f"tmk needs a temporary folder with a plain path, got {folder!r} (set TMPDIR)")
        link.symlink_to(source)
        with _STDERR_LOCK:
            saved = os.dup(2)
            try:
                with open(os.devnull, "wb") as devnull:
                    os.dup2(devnull.fileno(), 2)
                features = tmkpy.hashVideo(str(link), ffmpeg)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
        # tmkpy reports no failure: an unreadable video gives no frames, which parse_tmk refuses.
        if features is None or features.getFrameFeatureCount() <= 0:
            raise UnsupportedMedia(f"{source.name}: ffmpeg decoded no frames for the tmk hash")
        features.writeToOutputFile(str(out), "hashdb")
        data = out.read_bytes()
    return parse_tmk(data).data
