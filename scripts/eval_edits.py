"""The edit families of scripts/eval_matching.py: what re-uploaders do to an image.

Each family is a function (image, rng, strength) -> image; FAMILIES names the strengths each
family is tried at, and the recall target the evaluation checks it against.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

WORDS = ("breaking", "news", "watch", "share", "before", "they", "delete", "this", "video",
         "truth", "today", "live", "official", "channel", "follow", "us", "now", "exclusive",
         "footage", "the", "world", "must", "see", "update", "#1", "2026", "@media_wing")

Edit = Callable[[Image.Image, random.Random, object], Image.Image]


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(8, size))


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def border(image: Image.Image, rng: random.Random, spec: object) -> Image.Image:
    """spec = (fraction of each side, colour name); 'uneven' draws different widths per side."""
    fraction, colour = spec  # type: ignore[misc]
    fill = {"black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128)}.get(colour) or _colour(rng)
    w, h = image.size
    if colour == "uneven":
        sides = [round(rng.uniform(0.3, 1.5) * fraction * s) for s in (w, h, w, h)]
    else:
        sides = [round(fraction * w), round(fraction * h)] * 2
    return ImageOps.expand(image, border=tuple(sides), fill=fill)


def bars(image: Image.Image, rng: random.Random, spec: object) -> Image.Image:
    """Letterbox (bars above and below) or pillarbox (beside) to a 16:9 or 9:16 frame, black or coloured."""
    kind, colour = spec  # type: ignore[misc]
    fill = (0, 0, 0) if colour == "black" else (rng.randrange(40), rng.randrange(40), rng.randrange(40))
    w, h = image.size
    if kind == "letterbox":
        height = max(h + 2, round(w * 9 / 16), round(h * 1.3))
        canvas = Image.new("RGB", (w, height), fill)
        canvas.paste(image, (0, (height - h) // 2))
    else:
        width = max(w + 2, round(h * 16 / 9), round(w * 1.3))
        canvas = Image.new("RGB", (width, h), fill)
        canvas.paste(image, ((width - w) // 2, 0))
    return canvas


def caption(image: Image.Image, rng: random.Random, spec: object) -> Image.Image:
    """A text band of `fraction` of the height added above, below, or both."""
    where, fraction = spec  # type: ignore[misc]
    w, h = image.size
    band_h = max(12, round(h * fraction))
    bg = rng.choice([(255, 255, 255), (0, 0, 0), (200, 0, 0), _colour(rng)])
    fg = (0, 0, 0) if sum(bg) > 380 else (255, 255, 255)

    def band() -> Image.Image:
        out = Image.new("RGB", (w, band_h), bg)
        draw = ImageDraw.Draw(out)
        lines = max(1, min(3, band_h // 28))
        size = max(10, min(band_h // (lines + 1), w // 12))
        for n in range(lines):
            draw.text((rng.randrange(4, max(5, w // 8)), 4 + n * (band_h - 8) // lines),
                      _words(rng, rng.randrange(2, 6)), fill=fg, font=_font(size))
        return out

    top = band_h if where in ("top", "both") else 0
    bottom = band_h if where in ("bottom", "both") else 0
    canvas = Image.new("RGB", (w, h + top + bottom), bg)
    if top:
        canvas.paste(band(), (0, 0))
    canvas.paste(image, (0, top))
    if bottom:
        canvas.paste(band(), (0, top + h))
    return canvas


def screenshot(image: Image.Image, rng: random.Random, spec: object) -> Image.Image:
    """A phone app or a desktop browser showing the image, then the screenshot rescaled."""
    kind, scale = spec  # type: ignore[misc]
    if kind == "phone":
        width = 400
        margin = rng.choice((0, 8, 16))
        inner = width - 2 * margin
        shown = image.resize((inner, max(1, round(image.height * inner / image.width))), Image.Resampling.BILINEAR)
        heights = (24, 56, 56, 48)
        total = sum(heights) + shown.height + 2 * margin + 40
        canvas = Image.new("RGB", (width, total), (255, 255, 255))
        draw = ImageDraw.Draw(canvas)
        draw.rectangle((0, 0, width, 24), fill=(20, 20, 20))
        draw.text((8, 5), "12:4" + str(rng.randrange(10)), fill=(255, 255, 255), font=_font(13))
        for n in range(3):
            draw.rectangle((width - 20 - 16 * n, 7, width - 10 - 16 * n, 17), fill=(255, 255, 255))
        bar = rng.choice([(59, 89, 152), (29, 161, 242), (255, 255, 255), (0, 0, 0), _colour(rng)])
        draw.rectangle((0, 24, width, 80), fill=bar)
        text = (0, 0, 0) if sum(bar) > 380 else (255, 255, 255)
        draw.text((56, 40), _words(rng, 2), fill=text, font=_font(20))
        draw.ellipse((12, 36, 44, 68), fill=(200, 200, 200))
        y = 80 + margin
        canvas.paste(shown, (margin, y))
        y += shown.height + margin
        draw.text((12, y + 4), _words(rng, 5), fill=(30, 30, 30), font=_font(14))
        y += 40
        for n in range(4):
            draw.ellipse((20 + 90 * n, y + 14, 44 + 90 * n, y + 38), outline=(90, 90, 90), width=2)
        y += 56
        draw.rectangle((0, y, width, total), fill=(245, 245, 245))
    else:
        width = rng.choice((900, 1024))
        shown_w = rng.randrange(width // 2, width - 120)
        shown = image.resize((shown_w, max(1, round(image.height * shown_w / image.width))), Image.Resampling.BILINEAR)
        total = 30 + 40 + 36 + shown.height + 80
        canvas = Image.new("RGB", (width, total), rng.choice([(240, 240, 240), (32, 33, 36), (255, 255, 255)]))
        draw = ImageDraw.Draw(canvas)
        draw.rectangle((0, 0, width, 30), fill=(222, 225, 230))
        draw.rectangle((8, 4, 200, 30), fill=(255, 255, 255))
        draw.text((16, 8), _words(rng, 3), fill=(0, 0, 0), font=_font(13))
        draw.rectangle((0, 30, width, 70), fill=(255, 255, 255))
        draw.rounded_rectangle((80, 36, width - 80, 64), radius=12, fill=(241, 243, 244))
        draw.text((96, 42), "https://example.org/" + _words(rng, 1), fill=(60, 60, 60), font=_font(14))
        draw.text(((width - shown_w) // 2, 76), _words(rng, 4), fill=(120, 120, 120), font=_font(18))
        canvas.paste(shown, ((width - shown_w) // 2, 106))
        draw.text(((width - shown_w) // 2, 112 + shown.height), _words(rng, 6), fill=(120, 120, 120), font=_font(16))
    if scale != 1:
        canvas = canvas.resize((round(canvas.width * scale), round(canvas.height * scale)), Image.Resampling.BILINEAR)
    return canvas


def _logo(size: tuple[int, int], rng: random.Random) -> Image.Image:
    w, h = size
    logo = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(logo)
    fill = _colour(rng) + (255,)
    if rng.random() < 0.5:
        draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=min(w, h) // 5, fill=fill)
    else:
        draw.ellipse((0, 0, w - 1, h - 1), fill=fill)
    text = (0, 0, 0, 255) if sum(fill[:3]) > 380 else (255, 255, 255, 255)
    draw.text((w // 2, h // 2), rng.choice(("TV", "NEWS", "24", "AMQ", "FM")), fill=text,
              font=_font(h // 3), anchor="mm")
    return logo


def logo(image: Image.Image, rng: random.Random, spec: object) -> Image.Image:
    """A channel logo covering `area` of the image: opaque in a corner, or translucent in the centre."""
    placement, area, opacity = spec  # type: ignore[misc]
    w, h = image.size
    side_w = max(8, round(math.sqrt(area * w * h * 1.5)))
    side_h = max(8, round(side_w / 1.5))
    mark = _logo((min(side_w, w), min(side_h, h)), rng)
    if opacity < 1:
        alpha = mark.getchannel("A").point(lambda a: round(a * opacity))
        mark.putalpha(alpha)
    pad = max(2, round(0.03 * min(w, h)))
    if placement == "corner":
        x = rng.choice((pad, w - mark.width - pad))
        y = rng.choice((pad, h - mark.height - pad))
    else:
        x, y = (w - mark.width) // 2, (h - mark.height) // 2
    out = image.copy()
    out.paste(mark, (max(0, x), max(0, y)), mark)
    return out


def text_watermark(image: Image.Image, rng: random.Random, spec: object) -> Image.Image:
    """Translucent text across the middle (a channel's name or a handle)."""
    opacity = float(spec)  # type: ignore[arg-type]
    w, h = image.size
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    draw.text((w // 2, h // 2), _words(rng, 2), fill=(255, 255, 255, round(255 * opacity)),
              font=_font(max(12, w // 10)), anchor="mm", stroke_width=2,
              stroke_fill=(0, 0, 0, round(255 * opacity)))
    out = image.convert("RGBA")
    out.alpha_composite(layer)
    return out.convert("RGB")


def crop(image: Image.Image, rng: random.Random, spec: object) -> Image.Image:
    """Keep about `fraction` of each side (+-0.02, so no crop lands exactly on a grid a matcher
    might store), centred or at a random offset."""
    fraction, where = spec  # type: ignore[misc]
    fraction += rng.uniform(-0.02, 0.02)
    w, h = image.size
    cw, ch = max(8, round(w * fraction)), max(8, round(h * fraction))
    if where == "centre":
        x, y = (w - cw) // 2, (h - ch) // 2
    else:
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return image.crop((x, y, x + cw, y + ch))


def rotate_small(image: Image.Image, rng: random.Random, spec: object) -> Image.Image:
    degrees = float(spec) * rng.choice((-1, 1))  # type: ignore[arg-type]
    return image.rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))


def jpeg(image: Image.Image, rng: random.Random, spec: object) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=int(spec))  # type: ignore[call-overload]
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def resize(image: Image.Image, rng: random.Random, spec: object) -> Image.Image:
    scale = float(spec)  # type: ignore[arg-type]
    return image.resize((max(8, round(image.width * scale)), max(8, round(image.height * scale))),
                        Image.Resampling.BILINEAR)


def blur(image: Image.Image, rng: random.Random, spec: object) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(float(spec)))  # type: ignore[arg-type]


def colour(image: Image.Image, rng: random.Random, spec: object) -> Image.Image:
    kind = str(spec)
    if kind == "gray":
        return ImageOps.grayscale(image).convert("RGB")
    if kind == "bright":
        return ImageEnhance.Brightness(image).enhance(rng.choice((0.7, 1.3)))
    if kind == "contrast":
        return ImageEnhance.Contrast(image).enhance(rng.choice((0.6, 1.5)))
    if kind == "saturation":
        return ImageEnhance.Color(image).enhance(rng.choice((0.3, 1.8)))
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(int) + rng.randrange(6, 20)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def flip(image: Image.Image, rng: random.Random, spec: object) -> Image.Image:
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT if spec == "h" else Image.Transpose.FLIP_TOP_BOTTOM)


def rotate90(image: Image.Image, rng: random.Random, spec: object) -> Image.Image:
    return image.rotate(int(spec), expand=True)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Family:
    name: str
    edit: Edit
    strengths: tuple[object, ...]
    # Targets: 0.85 by default; crops to 80 % and overlays of >= 10 % of the area: 0.6.
    target: float = 0.85


FAMILIES: tuple[Family, ...] = (
    Family("border_black_white", border, ((0.05, "black"), (0.1, "white"), (0.2, "black"), (0.1, "grey"))),
    Family("border_coloured_uneven", border, ((0.05, "colour"), (0.1, "uneven"), (0.2, "colour"), (0.15, "uneven"))),
    Family("letterbox_pillarbox", bars, (("letterbox", "black"), ("pillarbox", "black"), ("letterbox", "dark"),
                                          ("pillarbox", "dark"))),
    Family("caption_top", caption, (("top", 0.1), ("top", 0.2), ("top", 0.3))),
    Family("caption_bottom", caption, (("bottom", 0.1), ("bottom", 0.2), ("both", 0.12))),
    Family("screenshot", screenshot, (("phone", 1.0), ("phone", 0.75), ("desktop", 1.0), ("desktop", 0.6))),
    Family("logo_small", logo, (("corner", 0.02, 1.0), ("corner", 0.05, 1.0), ("centre", 0.05, 0.5))),
    Family("logo_large", logo, (("corner", 0.1, 1.0), ("corner", 0.15, 1.0), ("centre", 0.15, 0.4)), target=0.6),
    Family("watermark_text", text_watermark, (0.3, 0.6)),
    Family("crop_95_90", crop, ((0.95, "centre"), (0.95, "off"), (0.9, "centre"), (0.9, "off"))),
    Family("crop_85", crop, ((0.85, "centre"), (0.85, "off"))),
    Family("crop_80", crop, ((0.8, "centre"), (0.8, "off")), target=0.6),
    Family("rotate_small", rotate_small, (1, 2, 3, 5)),
    Family("jpeg", jpeg, (50, 30, 15)),
    Family("resize", resize, (0.5, 0.3, 1.6)),
    Family("blur", blur, (1.0, 2.0, 3.0)),
    Family("colour", colour, ("gray", "bright", "contrast", "saturation", "hue")),
    Family("flip", flip, ("h", "v")),
    Family("rotate90", rotate90, (90, 180, 270)),
)


def encode(image: Image.Image) -> bytes:
    """How an edited copy is uploaded: JPEG at quality 90."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def encode_lossless(image: Image.Image) -> bytes:
    """How originals are submitted: lossless, and BMP since it costs nothing to write or read."""
    buffer = io.BytesIO()
    image.save(buffer, "BMP")
    return buffer.getvalue()
FAMILY = {family.name: family for family in FAMILIES}
