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
