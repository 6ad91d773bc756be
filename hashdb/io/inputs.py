"""Turning command-line arguments into things to hash or look up: `SIGNAL:HEX`, media paths,
directories (walked), hash files (JSONL from `hashdb hash --json`, or ThreatExchange's
`pdq <hex>` lines) and TMK+PDQF `.tmk` files. Parsing only: hashing is the service's job."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hashdb.io import te_format
from hashdb.errors import HashDBError, InvalidInput, UnsupportedMedia
from hashdb.hashing import media as media_io
from hashdb.hashing import keypoints_text, tmk
from hashdb.hashing.derived import derived_from_json
from hashdb.hashing.registry import get_signal, looks_like_hash_argument, parse_hash, parse_hash_argument, signal_names
from hashdb.types import FrameHash, HashValue, MediaHashes

MAX_HASH_FILE_BYTES = 512 * 1024 * 1024
BOM = b"\xef\xbb\xbf"  # UTF-8's byte-order mark
# Files an operating system leaves in folders of pictures: skipped in a folder walk, as
# dotfiles (.DS_Store, macOS's ._ resource forks) are.
OS_CLUTTER = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini"})


@dataclass(frozen=True, slots=True)
class HashInput:
    input: str
    value: HashValue


@dataclass(frozen=True, slots=True)
class FileInput:
    input: str
    path: Path


@dataclass(frozen=True, slots=True)
class HashedInput:
    input: str
    hashes: MediaHashes


@dataclass(frozen=True, slots=True)
class BadInput:
    input: str
    error: HashDBError


@dataclass(frozen=True, slots=True)
class SkippedInput:
    """A file found by walking a folder that is neither media nor a hash file (a README, a
    thumbnail database): left out with a note. Named on the command line, it is a BadInput."""

    input: str
    reason: str


Item = HashInput | FileInput | HashedInput | BadInput | SkippedInput


def expand(args: Sequence[str]) -> Iterator[Item]:
    """Yield one item per hash, media file or hash-file line, in the order given."""
    for arg in args:
        if not arg.strip():
            # An unset shell variable ("$FILE") would otherwise name the working directory.
            yield BadInput(arg, InvalidInput("empty argument: give a file, a folder or a SIGNAL:HEX hash"))
            continue
        if looks_like_hash_argument(arg):
            try:
                yield HashInput(arg, parse_hash_argument(arg))
            except HashDBError as exc:
                yield BadInput(arg, exc)
            continue
        path = Path(arg)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if not p.name.startswith(".")
                                and p.name.lower() not in OS_CLUTTER and not p.is_dir()):
                yield from _file_items(child, walked=True)
        elif path.exists():
            yield from _file_items(path)
        else:
            yield BadInput(arg, InvalidInput(f"{arg}: no such file, and not a SIGNAL:HEX hash{_signal_hint(arg)}"))


def _signal_hint(arg: str) -> str:
    """For `word:hex`, the signals a hash may be given as: a typo or another system's name
    (`pdqhash:...`, `photodna:...`) otherwise reads as a missing file."""
    prefix, sep, rest = arg.partition(":")
    if not sep or not prefix.isalnum() or not rest or "/" in rest:
        return ""
    return f" (unknown signal {prefix!r}; signals: {', '.join(signal_names())})"


def _file_items(path: Path, walked: bool = False) -> Iterator[Item]:
    if not path.is_file():
        # A FIFO or a device would block the read below, or never end: named on the command
        # line it is an error, found in a folder it is left out with a note.
        if walked:
            yield SkippedInput(str(path), "not a regular file (a FIFO, socket, device or broken link)")
        else:
            yield BadInput(str(path), UnsupportedMedia(f"{path}: not a regular file"))
        return
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        yield BadInput(str(path), InvalidInput(f"{path}: cannot read ({exc.strerror})"))
        return
    if head.startswith(tmk.MAGIC[:8]):  # a `.tmk` file, as Meta's tmk-hash-video writes it
        yield _tmk_file(path)
        return
    if _is_media(head):
        yield FileInput(str(path), path)
        return
    if not _looks_like_text(head):
        # What the decoder would refuse as "text, not media" (a README beside the images).
        if walked and head and media_io.looks_like_text(head) and media_io.format_name(head) is None:
            yield SkippedInput(str(path), "a text file, neither media nor a hash file")
        else:
            # Named on the command line, or binary (a format the decoder may name, such as
            # HEIC): the decoder's error says what it is and what is accepted.
            yield FileInput(str(path), path)
        return
    try:
        yield from read_hash_file(path)
    except HashDBError as exc:
        yield BadInput(str(path), exc)


def _tmk_file(path: Path) -> Item:
    try:
        with path.open("rb") as handle:
            data = handle.read(tmk.SIZE + 1)  # one byte more shows a file that is too long
        return HashedInput(str(path), MediaHashes(str(path), "video", (), tmk=tmk.parse_tmk(data).data))
    except OSError as exc:
        return BadInput(str(path), InvalidInput(f"{path}: cannot read ({exc.strerror})"))
    except HashDBError as exc:
        return BadInput(str(path), InvalidInput(f"{path}: {exc.message}"))


def _is_media(head: bytes) -> bool:
    try:
        media_io.media_type(head)
        return True
    except UnsupportedMedia:
        return False


def _looks_like_text(head: bytes) -> bool:
    stripped = head.removeprefix(BOM).lstrip()
    if stripped.startswith(b"{"):
        return True
    word = stripped.split(b" ", 1)[0].split(b"\t", 1)[0].decode("ascii", "replace").lower()
    return bool(word) and (_known_signal(word) or te_format.is_pytx_name(word))


def _known_signal(name: str) -> bool:
    try:
        get_signal(name)
        return True
    except HashDBError:
        return False


def read_hash_file(path: Path) -> Iterator[Item]:
    if path.stat().st_size > MAX_HASH_FILE_BYTES:
        raise InvalidInput(f"{path}: hash file is over {MAX_HASH_FILE_BYTES} bytes")
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            where = f"{path}:{number}"
            try:
                # Windows editors start a UTF-8 file with a byte-order mark.
                text = (raw.removeprefix(BOM) if number == 1 else raw).decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                # One bad line (a file name in another encoding) costs that line, not the file.
                yield BadInput(where, InvalidInput(f"{where}: not UTF-8 text"))
                continue
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            try:
                if text.lstrip().startswith("{"):
                    hashes = hashes_from_json(json.loads(text))
                    yield HashedInput(hashes.path or where, hashes)
                else:
                    yield te_line_item(text, where)
            except (ValueError, HashDBError) as exc:
                message = exc.message if isinstance(exc, HashDBError) else f"not valid JSON ({exc})"
                yield BadInput(where, InvalidInput(f"{where}: {message}"))


def te_line_item(text: str, where: str) -> Item:
    """ThreatExchange local-file format: `<signal> <hash>` (extra columns ignored), with pytx's
    video types: `video_md5`/`video_sha256` (our md5/sha256 of a video file) and `vpdq`. A hash
    that is not one is a BadInput named by `where`."""
    try:
        media_type, values, frames = te_format.parse_line(text)
    except HashDBError as exc:
        return BadInput(where, InvalidInput(f"{where}: {exc.message}"))
    if media_type == "image":
        return HashInput(text, values[0])
    # A vPDQ line is long: it is named by where it is, not by its text.
    name = where if frames else text
    return HashedInput(name, MediaHashes(name, media_type, values, frames=frames))


def hashes_from_json(doc: object) -> MediaHashes:
    """The inverse of output.hashes_json: one line of `hashdb hash --json`."""
    if not isinstance(doc, dict):
        raise InvalidInput("each line must be a JSON object")
    error = doc.get("error")
    if isinstance(error, str):
        # `hashdb hash --json` writes a file it could not hash as {"path", "error"}: pass its
        # reason on, as the folder it hashed would have (not "no hashes in this line").
        path = doc.get("path")
        raise InvalidInput(f"{path if isinstance(path, str) and path else 'a file'} could not be hashed: {error}")
    values: list[HashValue] = []
    for key, raw in doc.items():
        if key in ("path", "media_type", "frames", "pdq_variants", "pdq_dihedral", "derived", "tmk", "keypoints") \
                or not _known_signal(key):
            continue
        if key == "pdq" and isinstance(raw, dict):
            values.append(parse_hash("pdq", raw.get("hash"), raw.get("quality")))
        else:
            values.append(parse_hash(key, raw))
    variants = tuple(parse_hash("pdq", v.get("hash"), v.get("quality"))
                     for v in doc.get("pdq_variants") or [] if isinstance(v, dict))
    dihedral = tuple(parse_hash("pdq", v.get("hash"), v.get("quality"))
                     for v in doc.get("pdq_dihedral") or [] if isinstance(v, dict))
    frames: list[FrameHash] = []
    for n, frame in enumerate(doc.get("frames") or []):
        if not isinstance(frame, dict):
            raise InvalidInput("each frame must be an object")
        t = frame.get("t", 0.0)
        if isinstance(t, bool) or not isinstance(t, (int, float)):
            raise InvalidInput("frame time t must be a number")
        frames.append(FrameHash(n, float(t), parse_hash("pdq", frame.get("pdq"), frame.get("quality"))))
    tmk_bytes = None if doc.get("tmk") is None else tmk.parse_text(doc.get("tmk")).data
    media_type = doc.get("media_type", "video" if frames or tmk_bytes else "image")
    if media_type not in ("image", "video"):
        raise InvalidInput("media_type must be image or video")
    if tmk_bytes is not None and media_type != "video":
        raise InvalidInput("only a video has a tmk hash")
    if not values and not frames and tmk_bytes is None:
        raise InvalidInput("no hashes in this line")
    stored = None if doc.get("keypoints") is None else keypoints_text.decode_text(doc.get("keypoints"))
    if stored is not None and media_type != "image":
        raise InvalidInput("only an image has keypoints")
    path = doc.get("path")
    return MediaHashes(str(path) if isinstance(path, str) else "", str(media_type), tuple(values),
                       variants, dihedral=dihedral, frames=tuple(frames),
                       derived=derived_from_json(doc.get("derived")), tmk=tmk_bytes, keypoints=stored)
