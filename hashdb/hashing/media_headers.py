"""The canvas size a PNG, GIF or WebP will need, read from its header before Pillow opens it:
for these formats Pillow's reader allocates or expands the canvas while opening, so media.py
checks the pixel limit against this first. A PNG's every chunk CRC is checked on the way.
"""

from __future__ import annotations

import struct
import zlib

from hashdb.errors import UnsupportedMedia

# A legitimate PNG has IDAT chunks of kilobytes; millions of tiny chunks only cost time.
_MAX_PNG_CHUNKS = 200_000


def png_size(data: bytes) -> tuple[int, int]:
    """IHDR's size, after checking every chunk's length and CRC up to IEND.

    Pillow ignores IDAT checksums, so a corrupted PNG would otherwise hash as garbage.
    """
    view = memoryview(data)
    pos, chunks, size = 8, 0, None
    while True:
        if pos + 8 > len(view):
            raise UnsupportedMedia("PNG is truncated: it ends before the IEND chunk")
        (length,) = struct.unpack_from(">I", view, pos)
        kind = bytes(view[pos + 4 : pos + 8])
        name = kind.decode("latin-1")
        end = pos + 12 + length
        if end > len(view):
            raise UnsupportedMedia(f"PNG is truncated inside its {name!r} chunk at byte {pos:,}")
        (crc,) = struct.unpack_from(">I", view, end - 4)
        if zlib.crc32(view[pos + 4 : end - 4]) != crc:
            raise UnsupportedMedia(f"PNG is corrupt: bad CRC in its {name!r} chunk at byte {pos:,}")
        if size is None:
            if kind != b"IHDR" or length != 13:
                raise UnsupportedMedia("PNG is corrupt: it does not start with an IHDR chunk")
            size = struct.unpack_from(">II", view, pos + 8)
        if kind == b"IEND":
            return size
        chunks += 1
        if chunks > _MAX_PNG_CHUNKS:
            raise UnsupportedMedia(f"PNG has more than {_MAX_PNG_CHUNKS:,} chunks")
        pos = end


def gif_canvas(data: bytes) -> tuple[int, int]:
    """The canvas Pillow will allocate: the screen, grown to hold the first frame."""
    if len(data) < 13:
        raise UnsupportedMedia("GIF is truncated: it ends inside its header")
    width, height = struct.unpack_from("<HH", data, 6)
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while pos < len(data):
        if data[pos] == 0x2C:  # image descriptor of the first frame
            if pos + 9 > len(data):
                break
            left, top, frame_w, frame_h = struct.unpack_from("<HHHH", data, pos + 1)
            return max(width, left + frame_w), max(height, top + frame_h)
        if data[pos] != 0x21:  # not an extension: the trailer, or garbage Pillow will refuse
            break
        pos += 2
        while pos < len(data) and data[pos]:
            pos += data[pos] + 1
        pos += 1
    return width, height


def webp_canvas(data: bytes) -> tuple[int, int]:
    """The canvas size from the first chunk; libwebp allocates it when the file is opened."""
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return (
            int.from_bytes(data[26:28], "little") & 0x3FFF,
            int.from_bytes(data[28:30], "little") & 0x3FFF,
        )
    raise UnsupportedMedia("WEBP is corrupt: no VP8, VP8L or VP8X header")


def check_video_whole(data: bytes, fmt: str) -> None:
    """Refuse a video whose container says it is longer than the file: a truncated upload (a
    faststart MP4 cut anywhere in its media data still opens, and FFmpeg decodes the frames
    that are there). Its frames and TMK would be hashes of part of the video, shared as if
    they were the whole; refused, as a truncated PNG is."""
    cut = {"MP4": _boxes_cut, "MOV": _boxes_cut, "AVI": _riff_cut, "MKV": _ebml_cut}[fmt](memoryview(data))
    if cut is not None:
        raise UnsupportedMedia(f"{fmt} is truncated: {cut}; only the whole file can be hashed")


def video_seconds(data: bytes, fmt: str) -> float | None:
    """How long the container says its video track plays, where the frame count and rate
    OpenCV reports do not say it: an MP4 or MOV with an edit list (a copy trimmed without
    re-encoding) counts the frames its edit list hides. The track header's duration is the
    edited one. None where the container does not say (a fragmented MP4, another format): the
    frame count over the frame rate is then the length. 0.0 where that would mislead and nothing
    better is at hand: a Matroska file's duration is its longest track's, and an audio track
    running on past the picture is no damage (measured: a WebM with 9 s of sound over 5.9 s of
    video), so with a track other than video its frames are not held to a length."""
    if fmt == "MKV":
        types = _matroska_track_types(memoryview(data))
        return 0.0 if types is None or types - {1} else None
    if fmt not in ("MP4", "MOV"):
        return None
    view = memoryview(data)
    moov = _child(view, 0, len(view), b"moov")
    if moov is None:
        return None
    mvhd = _child(view, *moov, b"mvhd")
    if mvhd is None or mvhd[1] - mvhd[0] < 24:
        return None
    wide = view[mvhd[0]] == 1
    timescale = int.from_bytes(view[mvhd[0] + (20 if wide else 12):][:4], "big")
    if timescale == 0:
        return None
    pos, end = moov
    while (trak := _child(view, pos, end, b"trak")) is not None:
        pos = trak[1]
        mdia = _child(view, *trak, b"mdia")
        hdlr = _child(view, *mdia, b"hdlr") if mdia is not None else None
        tkhd = _child(view, *trak, b"tkhd")
        if hdlr is None or tkhd is None or bytes(view[hdlr[0] + 8:hdlr[0] + 12]) != b"vide":
            continue
        wide = view[tkhd[0]] == 1
        at, width = (28, 8) if wide else (20, 4)
        if tkhd[1] - tkhd[0] < at + width:
            return None
        duration = int.from_bytes(view[tkhd[0] + at:tkhd[0] + at + width], "big")
        if duration in (0, (1 << (8 * width)) - 1):  # fragmented, or "unknown"
            return None
        return duration / timescale
    return None


_SEGMENT, _TRACKS, _TRACK_ENTRY, _TRACK_TYPE, _CLUSTER = 0x18538067, 0x1654AE6B, 0xAE, 0x83, 0x1F43B675


def _ebml_children(view: memoryview, pos: int, end: int) -> list[tuple[int, int, int]]:
    """The elements from pos to end: (id, start of its data, its end), until one cannot be read
    or has an unknown size (a live recording's Cluster: what follows cannot be found)."""
    out = []
    while pos < end:
        element = _vint(view, pos)
        size = _vint(view, pos + element[1]) if element is not None else None
        if element is None or size is None:
            break
        ident = int.from_bytes(view[pos:pos + element[1]], "big")
        start = pos + element[1] + size[1]
        if size[2]:
            out.append((ident, start, end))
            break
        out.append((ident, start, min(start + size[0], end)))
        pos = start + size[0]
    return out


def _matroska_track_types(view: memoryview) -> set[int] | None:
    """The TrackType of each track (1 video, 2 audio, 17 subtitle...), None if not found
    before the first Cluster."""
    top = _ebml_children(view, 0, len(view))
    segment = next((e for e in top if e[0] == _SEGMENT), None)
    if segment is None:
        return None
    for ident, start, end in _ebml_children(view, segment[1], segment[2]):
        if ident == _CLUSTER:
            return None
        if ident == _TRACKS:
            types = set()
            for entry in _ebml_children(view, start, end):
                if entry[0] == _TRACK_ENTRY:
                    for field, at, stop in _ebml_children(view, entry[1], entry[2]):
                        if field == _TRACK_TYPE:
                            types.add(int.from_bytes(view[at:stop], "big"))
            return types
    return None


def _child(view: memoryview, pos: int, end: int, kind: bytes) -> tuple[int, int] | None:
    """The first box of this type between pos and end: (start of its body, its end)."""
    while pos + 8 <= end:
        size = int.from_bytes(view[pos:pos + 4], "big")
        header = 8
        if size == 1 and pos + 16 <= end:
            size, header = int.from_bytes(view[pos + 8:pos + 16], "big"), 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return None
        if bytes(view[pos + 4:pos + 8]) == kind:
            return pos + header, pos + size
        pos += size
    return None


def _fourcc(kind: bytes) -> bool:
    return all(0x20 <= c <= 0x7E for c in kind)


def _boxes_cut(view: memoryview) -> str | None:
    """ISO BMFF (MP4, MOV): each top-level box's size must fit in the file. Bytes that are not
    a box (no printable type) end the walk: junk after the boxes plays, so it is not our call."""
    pos, end = 0, len(view)
    while pos + 8 <= end:
        size = int.from_bytes(view[pos:pos + 4], "big")
        kind = bytes(view[pos + 4:pos + 8])
        if not _fourcc(kind):
            return None
        header = 8
        if size == 0:  # the last box, to the end of the file
            return None
        if size == 1:  # a 64-bit size follows the type
            if pos + 16 > end:
                return f"it ends inside the header of its {kind.decode('ascii')!r} box"
            size, header = int.from_bytes(view[pos + 8:pos + 16], "big"), 16
        if size < header:
            return None
        if pos + size > end:
            return (f"its {kind.decode('ascii')!r} box is cut short ({end - pos:,} of its {size:,} bytes "
                    "are in the file)")
        pos += size
    return None


def _riff_cut(view: memoryview) -> str | None:
    """AVI: RIFF chunks (an OpenDML file has more after the first), padded to even sizes."""
    pos, end = 0, len(view)
    while pos + 12 <= end and bytes(view[pos:pos + 4]) == b"RIFF":
        size = int.from_bytes(view[pos + 4:pos + 8], "little")
        if size == 0:  # a writer that never went back to fill it in
            return None
        if pos + 8 + size > end:
            return f"its RIFF chunk is cut short ({end - pos - 8:,} of its {size:,} bytes are in the file)"
        pos += 8 + size + (size & 1)
    return None


def _vint(view: memoryview, pos: int) -> tuple[int, int, bool] | None:
    """An EBML variable-length integer at pos: (value, its length, all value bits set)."""
    if pos >= len(view) or view[pos] == 0:
        return None
    length = 9 - view[pos].bit_length()
    if pos + length > len(view):
        return None
    value = int.from_bytes(view[pos:pos + length], "big") & ((1 << (7 * length)) - 1)
    return value, length, value == (1 << (7 * length)) - 1


def _ebml_cut(view: memoryview) -> str | None:
    """Matroska, WebM: the EBML header, then a Segment whose size (unless "unknown", as a live
    recording writes it) must fit in the file."""
    pos = 0
    for expected in (0x1A45DFA3, 0x18538067):  # EBML header, Segment
        element = _vint(view, pos)
        if element is None:
            return "it ends inside an element's header"
        ident = int.from_bytes(view[pos:pos + element[1]], "big")
        size = _vint(view, pos + element[1])
        if ident != expected or size is None:
            return None if size is not None else "it ends inside an element's header"
        value, length, unknown = size
        start = pos + element[1] + length
        if expected == 0x18538067:
            if not unknown and start + value > len(view):
                return f"its Segment is cut short ({len(view) - start:,} of its {value:,} bytes are in the file)"
            return None
        pos = start + value
    return None
