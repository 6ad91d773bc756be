"""The development corpus and edit families of scripts/eval_matching.py (no matching here).

Sources, all freely licensed (Debian main) and installed from Debian packages
(`scripts/system-packages.sh --eval` installs them; the test suite does not need them):
  - openclipart-png: Open Clip Art Library drawings, public domain (CC0)
    (`/usr/share/openclipart/png`, about 8,100 files; at most PER_FOLDER a folder);
  - fonts-noto-color-emoji: Noto Color Emoji, SIL Open Font License 1.1, rendered here one
    glyph per image (about 3,700: faces, objects, flags);
  - desktop backgrounds, photographs and rendered art of 1 to 15 megapixels (about 85, kept
    at up to PHOTO_SIDE): plasma-workspace-wallpapers (KDE, LGPL/CC-BY-SA), mate-backgrounds
    (GPL/CC-BY-SA), lomiri-wallpapers-16.04 (Ubuntu's community photographs, CC-BY-SA) and
    ukui-wallpapers (GPL); each package's /usr/share/doc/*/copyright names the licences.
Clip art and emoji are low-detail images, the material the 64-bit hashes confuse most; the
photographs are what most real uploads look like. `synthetic` draws procedural images instead
(seeded; no package needed): the corpus CI uses.

A source image is named by a key ("openclipart:<path>", "emoji:U+...", "photo:<path>",
"synthetic:<seed>"); `load_source` turns a key into the image, so worker processes can each
load what they hash instead of receiving pixels.

The edits applied to these images are in scripts/eval_edits.py.
"""

from __future__ import annotations

import functools
import random
import re
import warnings
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFont

OPENCLIPART = Path("/usr/share/openclipart/png")
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
# Desktop backgrounds: KDE's wallpapers (one folder each, several sizes of one picture) and
# the files of the other packages.
WALLPAPERS = Path("/usr/share/wallpapers")
BACKGROUNDS = Path("/usr/share/backgrounds")
# Sources are scaled down to this longest side: re-uploads are rarely larger, and it keeps
# the whole evaluation inside its time budget on two cores. Photographs keep more: the
# resampling a 1,000-pixel upload goes through is part of what is measured.
MAX_SIDE = 512
PHOTO_SIDE = 1024


# ----------------------------------------------------------------------------- sources

def _fit(image: Image.Image, side: int = MAX_SIDE) -> Image.Image:
    if image.mode in ("RGBA", "LA", "P", "PA"):
        # What a viewer shows: transparent areas on white.
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, (0, 0), rgba)
        image = flat
    image = image.convert("RGB")
    factor = max(image.size) // (2 * side)
    if factor > 1:  # a box reduction first: Lanczos over the full drawing costs seconds
        image = image.reduce(factor)
    scale = side / max(image.size)
    if scale < 1:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.LANCZOS)
    return image


# At most this many drawings from one folder: a few folders hold dozens of generated
# variations of one motif, which would otherwise weigh on every rate as much as a whole
# category of real drawings. shapes/stars (1,378 many-pointed stars, thin lines whose PDQ
# moves by up to 100 bits on a JPEG re-encode) keeps fewer.
PER_FOLDER = 300
FOLDER_CAP = {"shapes/stars": 40}


def _openclipart_keys() -> list[str]:
    taken: dict[str, int] = defaultdict(int)
    keys = []
    for path in sorted(OPENCLIPART.rglob("*.png")):
        folder = str(path.parent.relative_to(OPENCLIPART))
        if taken[folder] < FOLDER_CAP.get(folder, PER_FOLDER):
            taken[folder] += 1
            keys.append(f"openclipart:{path.relative_to(OPENCLIPART)}")
    return keys


def _openclipart(relative: str) -> Image.Image | None:
    try:
        with warnings.catch_warnings():
            # A few drawings are exported at up to 170 megapixels: skip them (decoding one
            # costs seconds) without Pillow's bomb warning, which opening them raises.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(OPENCLIPART / relative) as image:
                if min(image.size) < 48 or image.width * image.height > 12_000_000:
                    return None
                image.load()
                return _fit(image)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _emoji_sequences() -> Iterator[str]:
    ranges = ((0x1F300, 0x1F5FF), (0x1F600, 0x1F64F), (0x1F680, 0x1F6FF), (0x1F900, 0x1F9FF),
              (0x1FA70, 0x1FAFF), (0x2600, 0x27BF))
    for low, high in ranges:
        for code in range(low, high + 1):
            yield chr(code)
    letters = [chr(0x1F1E6 + n) for n in range(26)]
    for a in letters:
        for b in letters:
            yield a + b  # flags: only pairs naming a region render as one glyph


@functools.lru_cache(maxsize=1)
def _emoji_font() -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(EMOJI_FONT), 109)  # CBDT bitmaps exist at this size only


def _render(text: str) -> Image.Image:
    canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((80, 80), text, font=_emoji_font(), embedded_color=True, anchor="mm")
    return canvas


@functools.lru_cache(maxsize=1)
def _unknown_flag() -> bytes:
    return _render("\U0001F1FF\U0001F1FF").tobytes()  # "ZZ" names no region: a flag with "?"


def _emoji(code: str) -> Image.Image | None:
    text = "".join(chr(int(c, 16)) for c in code.removeprefix("U+").split("+"))
    canvas = _render(text)
    box = canvas.getbbox()
    if box is None or (box[2] - box[0]) > 1.5 * (box[3] - box[1]):
        return None  # no glyph, or two glyphs side by side (not a flag)
    if len(text) == 2 and canvas.tobytes() == _unknown_flag():
        return None  # a letter pair naming no region: the font's "?" flag, not an image of its own
    return _fit(canvas).resize((256, 256), Image.Resampling.LANCZOS)


_SIZE_SUFFIX = re.compile(r"_\d+x\d+$")


def _photo_keys() -> list[str]:
    """One file per picture: of the sizes a picture comes in (a KDE wallpaper's folder, or a
    size suffix as in "Elephants_3840x2160"), the smallest that is still PHOTO_SIDE wide
    in landscape, since decoding a 5,120-pixel PNG costs seconds."""
    sizes: dict[str, list[tuple[int, Path]]] = defaultdict(list)
    for path in sorted(WALLPAPERS.glob("*/contents/images/*")):
        w, _, h = path.stem.partition("x")
        if w.isdigit() and h.isdigit() and int(w) > int(h):
            sizes[str(path.parents[2])].append((int(w), path))
    for path in sorted(BACKGROUNDS.rglob("*")):
        if path.suffix.lower() in (".jpg", ".jpeg", ".png") and path.stat().st_size > 1024:
            with Image.open(path) as image:
                sizes[str(path.parent / _SIZE_SUFFIX.sub("", path.stem))].append((image.width, path))
    keys = []
    for group in sorted(sizes):
        wide = sorted(sizes[group])
        keys.append(f"photo:{next((p for w, p in wide if w >= PHOTO_SIDE), wide[-1][1])}")
    return keys


def _photo(path: str) -> Image.Image | None:
    try:
        with Image.open(path) as image:
            image.draft("RGB", (PHOTO_SIDE, PHOTO_SIDE))  # JPEG: decode at a reduced size
            image.load()
            return _fit(image, PHOTO_SIDE)
    except (OSError, ValueError):
        return None


def _synthetic(seed: int) -> Image.Image:
    """A procedural image: a smooth random colour field with random shapes on top."""
    local = np.random.default_rng(seed)
    w, h = int(local.integers(320, 513)), int(local.integers(240, 513))
    coarse = local.integers(0, 256, size=(int(local.integers(3, 9)), int(local.integers(3, 9)), 3),
                            dtype=np.uint8)
    image = Image.fromarray(coarse, "RGB").resize((w, h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(int(local.integers(6, 20))):
        x0, y0 = int(local.integers(-w // 4, w)), int(local.integers(-h // 4, h))
        x1, y1 = x0 + int(local.integers(w // 10, w // 2)), y0 + int(local.integers(h // 10, h // 2))
        colour = tuple(int(c) for c in local.integers(0, 256, 3))
        shape = int(local.integers(3))
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=colour)
    return image


def candidates(corpus: str, seed: int, limit: int) -> list[str]:
    """Source keys in the pool's order (shuffled by `seed`); `limit` bounds only the
    synthetic corpus, the Debian one offers every source it has."""
    rng = random.Random(seed)
    if corpus == "synthetic":
        return [f"synthetic:{rng.randrange(2**31)}" for _ in range(limit)]
    missing = [str(p) for p in (OPENCLIPART, EMOJI_FONT, WALLPAPERS, BACKGROUNDS) if not p.exists()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: scripts/system-packages.sh --eval installs the "
                         "corpus's Debian packages (or use --corpus synthetic)")
    keys = _openclipart_keys()
    keys += [f"emoji:U+{'+'.join(f'{ord(c):X}' for c in text)}" for text in _emoji_sequences()]
    keys += _photo_keys()
    rng.shuffle(keys)
    return keys


def load_source(key: str) -> Image.Image | None:
    """The image a key names, as the corpus uses it (RGB, scaled); None if it is unusable."""
    kind, _, name = key.partition(":")
    if kind == "openclipart":
        return _openclipart(name)
    if kind == "emoji":
        return _emoji(name)
    if kind == "photo":
        return _photo(name)
    if kind == "synthetic":
        return _synthetic(int(name))
    raise ValueError(f"unknown source {key!r}")


def trim_uniform(image: Image.Image, tolerance: int = 32) -> Image.Image:
    """The picture without its uniform margins: the eval's own trimming (not hashdb's
    detectors, so the pool does not change with the matching under test). Peels up to three
    layers (a border around a drawing's own white ground), each the colour of the top-left
    pixel, and keeps the image whole when what is left would be under 8 pixels."""
    for _ in range(3):
        ground = Image.new("RGB", image.size, image.getpixel((0, 0)))
        mask = ImageChops.difference(image, ground).convert("L").point(lambda v: 255 if v > tolerance else 0)
        box = mask.getbbox()
        if box is None or box == (0, 0, *image.size) or min(box[2] - box[0], box[3] - box[1]) < 8:
            break
        image = image.crop(box)
    return image
