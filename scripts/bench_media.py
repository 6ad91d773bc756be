"""Cost of media.decode_image on hostile shapes, next to references measured in the same run.

    .venv/bin/python scripts/bench_media.py

Shows that an animation costs its first frame however many frames follow, and that a
decompression bomb is refused from its header in about the time a header takes to read.
"""

from __future__ import annotations

import io
import statistics
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from hashdb.errors import MediaTooLarge
from hashdb.hashing.media import decode_image, read_file

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "media"
# One pixel of colour 0 (LZW code size 2: CLEAR, 0, END); a valid frame Pillow can decode.
TINY_FRAME = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"


def median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (3 * (1 + 3 * width)), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def refused(data: bytes) -> None:
    try:
        decode_image(data)
    except MediaTooLarge:
        return
    raise SystemExit("the bomb was not refused")


def pillow_all_frames(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            image.load()


def main() -> None:
    with Image.open(FIXTURES / "rocket.jpg") as photo:
        first = photo.convert("RGB").quantize(colors=256)
    buffer = io.BytesIO()
    first.save(buffer, "GIF")
    one = buffer.getvalue()
    many = one[:-1] + TINY_FRAME * 9_999 + b";"
    bomb = png_claiming(50_000, 50_000)
    photo_bytes = read_file(FIXTURES / "astronaut.jpg")

    rows = [
        ("decode_image: GIF, 1 frame (512x342)", len(one), median_ms(lambda: decode_image(one), 20)),
        ("decode_image: same GIF + 9,999 frames", len(many), median_ms(lambda: decode_image(many), 20)),
        ("reference: Pillow n_frames on the 10,000-frame GIF", len(many),
         median_ms(lambda: getattr(Image.open(io.BytesIO(many)), "n_frames"), 5)),
        ("reference: Pillow decoding all 10,000 frames", len(many), median_ms(lambda: pillow_all_frames(many), 1)),
        ("decode_image: 50,000 x 50,000 PNG header (refused)", len(bomb), median_ms(lambda: refused(bomb), 20)),
        ("reference: decode_image of astronaut.jpg (512x512)", len(photo_bytes),
         median_ms(lambda: decode_image(photo_bytes), 20)),
    ]
    print("| case | bytes | median ms |")
    print("|---|---|---|")
    for name, size, ms in rows:
        print(f"| {name} | {size:,} | {ms:.2f} |")


if __name__ == "__main__":
    main()
