"""Write the fixture images in fixtures/media/ and the image part of its README.

The originals are public-domain / CC0 photos shipped inside the scikit-image wheel; the logo is
drawn here. scikit-image is not a dependency of hashdb, so run this in a scratch venv:

    python3 -m venv /tmp/fixtures-venv
    /tmp/fixtures-venv/bin/pip install scikit-image pillow
    /tmp/fixtures-venv/bin/python scripts/make_fixtures.py

The output is deterministic for a given Pillow/libjpeg. Existing images are overwritten; the
README keeps everything from its `## Videos` heading on (written by make_fixture_videos.py).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from skimage import data as skdata

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "media"
MAX_SIDE = 512
JPEG_QUALITY = 80


@dataclass(frozen=True)
class Source:
    stem: str
    ext: str
    what: str
    licence: str


# Licences as stated in each function's docstring in skimage/data/_fetchers.py (0.26).
SOURCES = (
    Source("astronaut", "jpg", "Eileen Collins, NASA (skimage.data.astronaut)", "public domain (NASA)"),
    Source("camera", "png", "cameraman, Lav Varshney (skimage.data.camera)", "CC0"),
    Source("chelsea", "jpg", "Chelsea the cat, Stefan van der Walt (skimage.data.chelsea)", "CC0"),
    Source("coffee", "jpg", "coffee cup, Rachel Michetti (skimage.data.coffee)", "CC0"),
    Source("rocket", "jpg", "Falcon 9 at LC-40, SpaceX (skimage.data.rocket)", "public domain (SpaceX release)"),
)
LOGO = "drawn by scripts/make_fixtures.py"
LOGO_LICENCE = "CC0 (generated)"

rows: list[tuple[str, str, str, str]] = []  # file, source, licence, how made


def encode(image: Image.Image, ext: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    if ext == "jpg":
        image.save(buffer, "JPEG", quality=options.pop("quality", JPEG_QUALITY), **options)
    elif ext == "png":
        image.save(buffer, "PNG", optimize=True, **options)
    elif ext == "gif":
        image.save(buffer, "GIF", **options)
    else:
        raise ValueError(ext)
    return buffer.getvalue()


def write(name: str, payload: bytes, source: str, licence: str, how: str) -> None:
    (OUT / name).write_bytes(payload)
    rows.append((name, source, licence, how))


def load(stem: str, side: int = MAX_SIDE) -> Image.Image:
    image = Image.fromarray(getattr(skdata, stem)())
    if max(image.size) > side:
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return image


def originals_and_variants() -> None:
    for src in SOURCES:
        # Camera is kept smaller: as a lossless greyscale PNG its variants are the largest files.
        image = load(src.stem, 256 if src.ext == "png" else MAX_SIDE)
        original = encode(image, src.ext)
        w, h = image.size
        write(f"{src.stem}.{src.ext}", original, src.what, src.licence,
              f"original, {image.mode} {w}x{h}" + (f", JPEG q{JPEG_QUALITY}" if src.ext == "jpg" else ""))
        small = image.resize((round(w * 0.6), round(h * 0.6)), Image.Resampling.LANCZOS)
        write(f"{src.stem}_resize.{src.ext}", encode(small, src.ext), src.what, src.licence,
              f"original resized to 60 % ({small.width}x{small.height}, Lanczos)")
        decoded = Image.open(io.BytesIO(original))
        write(f"{src.stem}_jpeg30.jpg", encode(decoded, "jpg", quality=30), src.what, src.licence,
              "original decoded and re-encoded as JPEG q30")
        write(f"{src.stem}_hflip.{src.ext}", encode(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), src.ext),
              src.what, src.licence, "original mirrored left-right")
        write(f"{src.stem}_rotation.{src.ext}", encode(image.transpose(Image.Transpose.ROTATE_90), src.ext),
              src.what, src.licence, "original rotated 90 degrees anticlockwise")
        write(f"{src.stem}_corrupt.{src.ext}", original[: len(original) // 2], src.what, src.licence,
              "first half of the original's bytes (truncated file)")


def draw_logo(size: int = 256) -> Image.Image:
    """A two-colour badge on a transparent background, drawn 4x and downsampled for soft edges."""
    big = size * 4
    canvas = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    pen = ImageDraw.Draw(canvas)
    pen.ellipse((big * 0.08, big * 0.08, big * 0.92, big * 0.92), fill=(20, 90, 200, 255))
    pen.polygon(
        [(big * 0.5, big * 0.2), (big * 0.78, big * 0.72), (big * 0.22, big * 0.72)], fill=(250, 200, 30, 255)
    )
    pen.rectangle((big * 0.42, big * 0.45, big * 0.58, big * 0.6), fill=(0, 0, 0, 0))
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


def mode_fixtures() -> None:
    logo = draw_logo()
    write("logo_rgba.png", encode(logo, "png"), LOGO, LOGO_LICENCE,
          "RGBA, transparent background and soft (partial-alpha) edges")
    opaque = Image.new("RGBA", logo.size, (240, 240, 240, 255))
    opaque.alpha_composite(logo)
    write("logo_opaque.png", encode(opaque, "png"), LOGO, LOGO_LICENCE,
          "RGBA whose alpha is 255 everywhere (no real transparency)")
    # Palette with one fully transparent index: what GIF-style transparency looks like in PNG.
    hard = logo.copy()
    hard.putalpha(logo.getchannel("A").point(lambda a: 255 if a >= 128 else 0))
    palette = hard.convert("RGB").quantize(colors=15)
    indices = np.asarray(palette).copy()
    indices[np.asarray(hard.getchannel("A")) == 0] = 15
    paletted = Image.fromarray(indices.astype(np.uint8), "P")
    paletted.putpalette(palette.getpalette()[: 15 * 3] + [0, 0, 0])
    write("logo_palette.png", encode(paletted, "png", transparency=15), LOGO, LOGO_LICENCE,
          "P (16 colours), index 15 transparent (tRNS)")

    by_stem = {src.stem: src for src in SOURCES}
    coffee, camera, astronaut, chelsea, rocket = (
        by_stem[s] for s in ("coffee", "camera", "astronaut", "chelsea", "rocket")
    )
    write("coffee_palette.png", encode(load("coffee", 256).quantize(colors=64), "png"),
          coffee.what, coffee.licence, "P (64 colours, median cut), 256 px, no transparency")
    grey16 = np.asarray(load("camera", 256)).astype(np.uint16) * 257
    write("camera_16bit.png", encode(Image.fromarray(grey16), "png"), camera.what, camera.licence,
          "16-bit greyscale (8-bit values x 257, full range), 256 px; Pillow opens it as I;16")
    write("astronaut_cmyk.jpg", encode(load("astronaut", 192).convert("CMYK"), "jpg"),
          astronaut.what, astronaut.licence, "CMYK JPEG, 192 px")
    # Stored turned 90 degrees anticlockwise, tagged 6 ("rotate 90 clockwise to display"),
    # so a viewer that honours EXIF shows the cat upright.
    upright = load("chelsea", 384)
    exif = Image.Exif()
    exif[0x0112] = 6
    write("chelsea_exif6.jpg", encode(upright.transpose(Image.Transpose.ROTATE_90), "jpg", exif=exif.tobytes()),
          chelsea.what, chelsea.licence, "pixels stored rotated 90 degrees anticlockwise, EXIF orientation 6")
    base = load("rocket", 128)
    frames = [base] + [base.rotate(angle, fillcolor=(0, 0, 0)) for angle in (20, 40, 60)]
    write("rocket_anim.gif", encode(frames[0], "gif", save_all=True, append_images=frames[1:], duration=200, loop=0),
          rocket.what, rocket.licence, "animated GIF, 4 frames (the original, then rotated 20/40/60 degrees)")


def framed_fixtures() -> None:
    """Edited re-uploads of originals that a whole-image PDQ misses: a border, a caption band,
    a phone screenshot. Their originals must still match them (through derived hashes)."""
    by_stem = {src.stem: src for src in SOURCES}
    coffee, chelsea, astronaut = (by_stem[s] for s in ("coffee", "chelsea", "astronaut"))
    image = load("coffee")
    bordered = Image.new("RGB", (image.width + 2 * 48, image.height + 2 * 48), (0, 0, 0))
    bordered.paste(image, (48, 48))
    write("coffee_border.jpg", encode(bordered, "jpg", quality=90), coffee.what, coffee.licence,
          "original inside a 48-pixel black border, JPEG q90")
    image = load("chelsea")
    band = 72
    captioned = Image.new("RGB", (image.width, image.height + band), (255, 255, 255))
    ImageDraw.Draw(captioned).text((12, 18), "watch before they delete this", fill=(0, 0, 0),
                                   font=ImageFont.load_default(size=30))
    captioned.paste(image, (0, band))
    write("chelsea_caption.jpg", encode(captioned, "jpg", quality=90), chelsea.what, chelsea.licence,
          f"original under a {band}-pixel white caption band with black text, JPEG q90")
    image = load("astronaut", 376)
    width, top, bottom = 400, 24 + 56, 48
    shot = Image.new("RGB", (width, top + image.height + 60 + bottom), (255, 255, 255))
    pen = ImageDraw.Draw(shot)
    pen.rectangle((0, 0, width, 24), fill=(20, 20, 20))
    pen.text((8, 5), "12:45", fill=(255, 255, 255), font=ImageFont.load_default(size=13))
    pen.rectangle((0, 24, width, top), fill=(59, 89, 152))
    pen.ellipse((12, 36, 44, 68), fill=(200, 200, 200))
    pen.text((56, 40), "channel name", fill=(255, 255, 255), font=ImageFont.load_default(size=20))
    shot.paste(image, (12, top))
    pen.text((12, top + image.height + 16), "shared 3 h ago", fill=(40, 40, 40), font=ImageFont.load_default(size=16))
    pen.rectangle((0, shot.height - bottom, width, shot.height), fill=(245, 245, 245))
    for x in (40, 190, 340):
        pen.rectangle((x, shot.height - 34, x + 20, shot.height - 14), fill=(90, 90, 90))
    write("astronaut_screenshot.jpg", encode(shot, "jpg", quality=90), astronaut.what, astronaut.licence,
          "original (376 px) in a phone app's frame: status bar, app bar, margins, caption, nav bar")


def write_readme() -> None:
    readme = OUT / "README.md"
    tail = ""
    if readme.exists():
        text = readme.read_text()
        start = text.find("## Videos")
        if start >= 0:
            tail = "\n" + text[start:]
    lines = [
        "# Fixture media",
        "",
        "Small, harmless, permissively licensed files for tests, benchmarks and `hashdb demo`.",
        "Images are written by `scripts/make_fixtures.py` (see its docstring for how to run it);",
        "originals come from the sample data shipped in the scikit-image wheel, whose docstrings",
        "(`skimage/data/_fetchers.py`) state each licence. Variants are named `<stem>_<variant>.<ext>`.",
        "",
        "## Images",
        "",
        "| file | bytes | source | licence | how it was made |",
        "|---|---|---|---|---|",
    ]
    for name, source, licence, how in rows:
        lines.append(f"| `{name}` | {(OUT / name).stat().st_size:,} | {source} | {licence} | {how} |")
    readme.write_text("\n".join(lines) + "\n" + tail)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    originals_and_variants()
    mode_fixtures()
    framed_fixtures()
    write_readme()
    total = sum((OUT / name).stat().st_size for name, *_ in rows)
    print(f"wrote {len(rows)} images, {total:,} bytes, to {OUT}")


if __name__ == "__main__":
    main()
