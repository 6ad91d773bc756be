"""Small rotations of the fixture photographs, on a kept and on a grown canvas: how many copies
find their original through the service's own submit and lookup.

    .venv/bin/python scripts/eval_turns.py
    PYTHONPATH=/path/to/other/checkout .venv/bin/python scripts/eval_turns.py   # another checkout

An editor's rotate keeps the canvas and cuts the picture's corners off; ImageMagick's -rotate
and Pillow's expand=True grow the canvas to hold the whole turned picture. Each fixture photo
is submitted, then each turned copy (Pillow, bicubic, black or white fill, saved as JPEG 90)
is looked up as a file would be (`hashdb lookup`'s hashing, dihedral variants and derived
hashes included); a find is a match of the original's record.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

from PIL import Image

from hashdb.service.local import open_database
from hashdb.types import Principal

MEDIA = Path(__file__).resolve().parents[1] / "fixtures" / "media"
PHOTOS = ("astronaut.jpg", "camera.png", "chelsea.jpg", "coffee.jpg", "rocket.jpg")
FILLS = {"black": (0, 0, 0), "white": (255, 255, 255)}


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--degrees", default="1,-2,3,-4,5", help="comma-separated angles")
    args = parser.parse_args()
    angles = [float(a) for a in args.degrees.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        service = open_database(Path(folder) / "turns.sqlite")
        service.load_index()
        org = service.store.ensure_org("eval")
        actor = Principal(org.id, org.name, "contributor")
        found: dict[tuple[bool, str], list[int]] = {(e, f): [0, 0] for e in (False, True) for f in FILLS}
        for name in PHOTOS:
            photo = Image.open(MEDIA / name).convert("RGB")
            hashes = service.hash_bytes(jpeg(photo), name)
            ids = set(service.submit([service.submission_for(hashes, ("glorification",))], actor)[0].ids)
            for expand in (False, True):
                for fill, colour in FILLS.items():
                    for degrees in angles:
                        turned = photo.rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=colour,
                                              expand=expand)
                        query = service.query_for(service.hash_bytes(jpeg(turned), "q", dihedral=True))
                        result = service.lookup([query], actor)[0]
                        found[(expand, fill)][0] += any(m.id in ids for m in result.matches)
                        found[(expand, fill)][1] += 1
        service.store.close()
    print(f"{len(PHOTOS)} fixture photos x angles {', '.join(f'{a:g}' for a in angles)} degrees; JPEG 90\n")
    print("| canvas | fill | found |\n|---|---|---:|")
    for (expand, fill), (hits, total) in found.items():
        print(f"| {'grown' if expand else 'kept'} | {fill} | {hits} of {total} |")


if __name__ == "__main__":
    main()
