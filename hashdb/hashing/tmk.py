"""TMK+PDQF video hashes (Meta's temporal match kernel over float PDQ frame features): the
`.tmk` file format that Meta's `tmk-hash-video` and tmkpy write, strict parsing, the text form
the API and CLI carry, and the two-level comparison. Pure: computing a TMK from a video (tmkpy
and FFmpeg) is tmk_video.py's job.

A `.tmk` file is a 32-byte header (magics `TMK1`, `FVEC`, `PDQF`, then little-endian int32
frames per second, periods P, Fourier coefficients m, feature dimension d, frames hashed), the
P periods (int32), the m coefficients, the pure-average feature (d), then the cosine and the
sine features (P x m x d each), all float32. TMK+PDQF fixes P=4, m=32, d=256 at 15 fps:
263,344 bytes. Its text form is that file in standard base64 (RFC 4648, padded, one line).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import math
import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hashdb.errors import FeaturelessVideo, InvalidHash, InvalidInput
from hashdb.types import TmkHash

SIGNAL = "tmk"
MAGIC = b"TMK1FVECPDQF"
FRAMES_PER_SECOND = 15
# Poullot et al.'s periods (in frames at 15 fps): co-prime, so offsets modulo each combine.
PERIODS = (2731, 4391, 9767, 14653)
COEFFICIENTS = 32
DIMENSION = 256
_HEADER = struct.Struct("<12s5i")
SIZE = (_HEADER.size + 4 * len(PERIODS) + 4 * COEFFICIENTS + 4 * DIMENSION
        + 2 * 4 * len(PERIODS) * COEFFICIENTS * DIMENSION)
TEXT_LENGTH = 4 * math.ceil(SIZE / 3)
# Meta's thresholds for TMK+PDQF (tmk_default_thresholds.h): both levels at 0.7.
LEVEL1_THRESHOLD = 0.7
LEVEL2_THRESHOLD = 0.7


@dataclass(frozen=True, slots=True)
class TmkFeatures:
    """A parsed, validated `.tmk` file; `data` is its exact bytes (what is stored and shared)."""

    data: bytes
    frame_count: int
    coefficients: npt.NDArray[np.float32]  # (m,)
    average: npt.NDArray[np.float32]  # (d,): the pure-average feature, level 1's vector
    cos: npt.NDArray[np.float32]  # (P, m, d)
    sin: npt.NDArray[np.float32]  # (P, m, d)

    @property
    def digest(self) -> str:
        """sha256 of the file: the record's identity (the same TMK twice is one record)."""
        return tmk_digest(self.data)


def tmk_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_text(text: object) -> bytes:
    """The bytes of a tmk hash given as text; refuses anything but one exact base64 `.tmk`."""
    if not isinstance(text, str):
        raise InvalidHash(f"tmk hash must be a base64 string, got {type(text).__name__}")
    if len(text) != TEXT_LENGTH:
        raise InvalidHash(f"tmk hash must be {TEXT_LENGTH} base64 characters (a TMK+PDQF .tmk file "
                          f"of {SIZE} bytes), got {len(text)}")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise InvalidHash("tmk hash is not valid base64 (A-Z a-z 0-9 + / and = padding only)") from exc


def parse_text(text: object) -> TmkFeatures:
    return parse_tmk(decode_text(text))


def parse_tmk(data: bytes) -> TmkFeatures:
    """Validate a `.tmk` file strictly: TMK+PDQF's shape and parameters, finite features."""
    if len(data) != SIZE:
        raise InvalidHash(f"tmk file must be {SIZE} bytes (TMK+PDQF: 4 periods, 32 coefficients, "
                          f"256 dimensions), got {len(data)}")
    magic, fps, periods, coefficients, dimension, frames = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise InvalidHash(f"not a TMK+PDQF feature file: header {magic[:12]!r}, expected {MAGIC!r}")
    shape = (fps, periods, coefficients, dimension)
    if shape != (FRAMES_PER_SECOND, len(PERIODS), COEFFICIENTS, DIMENSION):
        raise InvalidHash(f"tmk parameters (fps, periods, coefficients, dimension) are {shape}, expected "
                          f"{(FRAMES_PER_SECOND, len(PERIODS), COEFFICIENTS, DIMENSION)}")
    if frames <= 0:
        raise InvalidHash(f"tmk file hashed {frames} frames: an empty video has no TMK")
    offset = _HEADER.size
    stored_periods = tuple(int(p) for p in np.frombuffer(data, "<i4", len(PERIODS), offset))
    offset += 4 * len(PERIODS)
    if stored_periods != PERIODS:
        raise InvalidHash(f"tmk periods are {stored_periods}, expected {PERIODS}")
    floats = np.frombuffer(data, "<f4", offset=offset).astype(np.float32)
    if not np.all(np.isfinite(floats)):
        raise InvalidHash("tmk features contain NaN or infinity")
    m, d, block = COEFFICIENTS, DIMENSION, len(PERIODS) * COEFFICIENTS * DIMENSION
    coefficients_read = floats[:m]
    # Compatible files have the same coefficients (Meta's check: relative error <= 1e-6).
    if not np.allclose(coefficients_read, poullot_coefficients(), rtol=1e-6, atol=0):
        raise InvalidHash("tmk Fourier coefficients are not TMK+PDQF's (Poullot's, beta 32)")
    average = floats[m : m + d]
    if not np.any(average):
        raise FeaturelessVideo("tmk pure-average feature is all zero (a flat video: nothing to match)")
    cos = floats[m + d : m + d + block].reshape(len(PERIODS), m, d)
    sin = floats[m + d + block :].reshape(len(PERIODS), m, d)
    return TmkFeatures(bytes(data), int(frames), coefficients_read, average, cos, sin)


@functools.lru_cache(maxsize=1)
def poullot_coefficients() -> npt.NDArray[np.float32]:
    """Poullot's Fourier coefficients for beta 32, from their formula (modified Bessel functions
    by their power series): a_0 = (I_0(b) - e^-b) / (2 sinh b), a_j = I_j(b) / sinh b."""
    beta = 32.0
    half = beta / 2
    out = []
    for j in range(COEFFICIENTS):
        term = half**j / math.factorial(j)
        total, k = 0.0, 0
        while term > 1e-18 * max(total, 1.0):  # terms peak near k = 16, then fall fast
            total += term
            k += 1
            term *= half * half / (k * (k + j))
        out.append((total - math.exp(-beta)) / (2 * math.sinh(beta)) if j == 0 else total / math.sinh(beta))
    return np.array(out, dtype=np.float32)


def level1(a: TmkFeatures, b: TmkFeatures) -> float:
    """Cosine similarity of the pure-average features (the cheap first level)."""
    x, y = a.average.astype(np.float64), b.average.astype(np.float64)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def unit_average(features: TmkFeatures) -> bytes:
    """The pure-average feature scaled to length 1, as little-endian float32 bytes: level 1 is
    then an inner product (what a cosine index stores)."""
    v = features.average.astype(np.float64)
    return (v / np.linalg.norm(v)).astype("<f4").tobytes()


def stored(features: TmkFeatures) -> TmkHash:
    """What a record keeps of a TMK: the file, and its unit average for the cosine index."""
    return TmkHash(features.data, unit_average(features))


@functools.lru_cache(maxsize=len(PERIODS))
def _waves(period: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """cos(j delta) and sin(j delta) for every offset delta = 2 pi o / period and j = 1..m-1."""
    angles = np.outer(np.arange(period) * (2 * np.pi / period), np.arange(1, COEFFICIENTS))
    return np.cos(angles), np.sin(angles)


def level2(a: TmkFeatures, b: TmkFeatures) -> float:
    """The temporal match kernel at the best time offset: for each period, the kernel
    K(delta) = <cos_a0, cos_b0> + sum_j cos(j delta) (<cos_aj, cos_bj> + <sin_aj, sin_bj>)
    + sin(j delta) (<sin_aj, cos_bj> - <cos_aj, sin_bj>) over every offset modulo the period;
    the best period's best offset, divided by K's value for identical features."""
    cc = np.einsum("pjd,pjd->pj", a.cos, b.cos, dtype=np.float64)
    ss = np.einsum("pjd,pjd->pj", a.sin, b.sin, dtype=np.float64)
    sc = np.einsum("pjd,pjd->pj", a.sin, b.cos, dtype=np.float64)
    cs = np.einsum("pjd,pjd->pj", a.cos, b.sin, dtype=np.float64)
    best = -math.inf
    for i, period in enumerate(PERIODS):
        cosines, sines = _waves(period)
        kernel = cc[i, 0] + cosines @ (cc[i, 1:] + ss[i, 1:]) + sines @ (sc[i, 1:] - cs[i, 1:])
        best = max(best, float(kernel.max()))
    c = a.coefficients.astype(np.float64)
    return best / float(c[0] + 2 * c[1:].sum())


@dataclass(frozen=True, slots=True)
class TmkRule:
    """Two levels, as Meta's tmk-query does: a cheap cosine of the averages picks candidates,
    the kernel with time shifts decides. Scores are similarities: higher is closer, 1 at most."""

    level1: float = LEVEL1_THRESHOLD
    level2: float = LEVEL2_THRESHOLD

    def __post_init__(self) -> None:
        for name, value in (("level-1", self.level1), ("level-2", self.level2)):
            if not (math.isfinite(value) and -1 <= value <= 1):
                raise InvalidInput(f"tmk {name} threshold must be from -1 to 1, got {value}")
