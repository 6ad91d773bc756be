"""PDQ's numeric core on uint8 RGB arrays: luma, Jarosz tent filter, 64x64 decimation, DCT, quality.

Bit-exact with Meta's C++ (pdqhashing.cpp, downscaling.cpp) as the pdqhash binding runs it:
every float32 operation happens in the same order with the same rounding, vectorised across
the independent rows or columns that the C++ walks one after another. Pure functions of
arrays: no PIL, no I/O; the only thing kept between calls is each thread's scratch memory
(see _scratch), never its contents.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

F32 = np.float32
Floats = npt.NDArray[np.float32]

# Images with a side under this get the all-zero hash and quality 0 (MIN_HASHABLE_DIM).
MIN_HASHABLE_DIM = 5
SIDE = 64
ZERO_HEX = "0" * 64

# Luma: pdqhash computes float32(R*0.299 + G*0.587 + B*0.114) in float64. With k = 299R +
# 587G + 114B (an integer below 2**24, so exact in float32 however it is summed) that equals
# the correctly rounded float32 division k / 1000: k/1000 is never within 0.004 ulp of a
# float32 rounding midpoint (a midpoint would need 125 | k, which makes k/1000 a multiple of
# 1/8, exactly representable), and the float64 sum is within ~1e-13 of k/1000. The tests
# check all 2**24 colours. This needs no float64 image and no ordering of the three terms.
_LUMA_WEIGHTS = np.array([[299.0, 587.0, 114.0]], dtype=F32)
_THOUSAND = F32(1000.0)
# Pixels of the image converted to float at a time: the float copy of a block stays in cache.
_LUMA_PIXELS = 32768
_LUMA_TILE = (128, 256)
# Steps of a box pass kept before they are transposed out in one go; each step then writes
# a 256-byte run per destination row instead of 4 bytes (fewer cache and TLB misses).
_BOX_BLOCK = 64
# Pairs x lanes interleaved at a time by a sampled pass: a 512 KB buffer, in cache.
_PIECE_FLOATS = 1 << 16
# From this many lanes on, a sampled pass steps like a full one: the calls are then cheap
# next to the work, and the reductions' interleaved copies cost more than they save.
_STEPWISE_LANES = 1536
# Arrays of 16 to 64 MB are kept per thread between calls (_scratch).
_SCRATCH_FLOATS = (1 << 22, 1 << 24)


class _Scratch(threading.local):
    def __init__(self) -> None:
        self.arrays: dict[str, Floats] = {}


_SCRATCH = _Scratch()


def _scratch(name: str, shape: tuple[int, ...]) -> Floats:
    """Uninitialised float32 memory of this shape, reused by this thread for 16 to 64 MB.

    A fresh 40 MB array (a 4000-pixel image) comes from new pages whose first touch faults:
    reusing them made a 4000-pixel hash 15% faster. Smaller fresh arrays measured as fast or
    faster, so they are not kept, and neither are larger ones (memory). A thread keeps at most
    one array per name, and only until it next needs one outside that range: a run of large
    images reuses memory, a server thread back to small images lets it go. Names must differ
    between arrays in use at the same time.
    """
    size = math.prod(shape)
    low, high = _SCRATCH_FLOATS
    if not low <= size <= high:
        _SCRATCH.arrays.pop(name, None)
        return np.empty(shape, dtype=F32)
    held = _SCRATCH.arrays.get(name)
    if held is None or held.size < size:
        held = _SCRATCH.arrays[name] = np.empty(size, dtype=F32)
    return held[:size].reshape(shape)


def _image(name: str, rows: int, cols: int) -> Floats:
    """rows x cols scratch whose rows start an odd number of cache lines apart.

    The passes write these arrays a 64-row block at a time, transposed: a few values into
    every row. With rows 4096 bytes apart (1024 floats, a common width) all those writes
    fall into the same few cache sets and evict each other; an odd stride in 64-byte lines
    spreads them (measured: the first pass's transposed writes at 1024 px took half the time).
    """
    lines = -(-cols // 16) | 1
    full = _scratch(name, (rows, 16 * lines))
    return full[:, :cols]


def jarosz_window(old: int) -> int:
    """computeJaroszFilterWindowSize(old, 64): half of one 64th of the side, rounded up."""
    return (old + 2 * SIDE - 1) // (2 * SIDE)


def decimation_indices(n: int) -> list[int]:
    """The source index decimateFloat samples for each of the 64 cells: its centre, in double."""
    return [int(((i + 0.5) * n) / SIDE) for i in range(SIDE)]


def _luma_into(block: npt.NDArray[np.uint8], floats: Floats, out: Floats) -> None:
    """Luma of an h x w x 3 uint8 block into out (h x w); floats is h x w x 3 scratch."""
    import cv2  # here, not at the top: with the compiled kernel only the fallback needs OpenCV

    np.copyto(floats, block, casting="unsafe")
    # transform sums the three weighted channels: exact, the values are integers < 2**24.
    weighted = cv2.transform(floats, _LUMA_WEIGHTS, dst=out)
    np.divide(weighted, _THOUSAND, out=out)


def luma(rgb: npt.NDArray[np.uint8]) -> Floats:
    """H x W float32 luma, equal to pdqhash's."""
    rows, cols = rgb.shape[:2]
    out = np.empty((rows, cols), dtype=F32)
    step = max(1, _LUMA_PIXELS // cols)
    floats = np.empty((min(step, rows), cols, 3), dtype=F32)
    for top in range(0, rows, step):
        block = rgb[top : top + step]
        _luma_into(block, floats[: len(block)], out[top : top + len(block)])
    return out


def luma_transposed(rgb: npt.NDArray[np.uint8]) -> Floats:
    """W x H float32 luma: the layout the first (horizontal) box pass runs along."""
    out = np.empty(rgb.shape[1::-1], dtype=F32)
    _luma_transposed_into(rgb, out)
    return out


def _luma_transposed_into(rgb: npt.NDArray[np.uint8], out: Floats) -> None:
    """luma_transposed into out (W x H).

    Made a tile at a time, so that the float copy stays in cache and each tile goes out
    transposed in runs of a whole cache line or more per destination row.
    """
    rows, cols = rgb.shape[:2]
    tile_rows, tile_cols = min(_LUMA_TILE[0], rows), min(_LUMA_TILE[1], cols)
    floats = np.empty((tile_rows, tile_cols, 3), dtype=F32)
    tile = np.empty((tile_rows, tile_cols), dtype=F32)
    for top in range(0, rows, tile_rows):
        for left in range(0, cols, tile_cols):
            block = rgb[top : top + tile_rows, left : left + tile_cols]
            n, m = block.shape[:2]
            _luma_into(block, floats[:n, :m], tile[:n, :m])
            _transpose_into(tile[:n, :m], out[left : left + m, top : top + n])


def _transpose_into(src: Floats, dst: Floats) -> None:
    import cv2

    written = cv2.transpose(src, dst=dst)
    # OpenCV silently allocates a new array when it cannot write through the view.
    if written.__array_interface__["data"][0] != dst.__array_interface__["data"][0]:
        dst[...] = written


def _box_counts(n: int, window: int) -> Floats:
    """What box1DFloat divides each of its n outputs by: the window grows, stays full, shrinks."""
    half = (window + 2) // 2
    counts = np.concatenate(
        (np.arange(half, window + 1), np.full(n - window, window), np.arange(window - 1, window - half, -1))
    )
    return counts.astype(F32)


def _box_plan(rows: list[Floats], window: int) -> tuple[Floats, list[Floats], list[Floats], Floats]:
    """box1DFloat along a list of rows (the steps; each row holds every lane) as a list of steps.

    Step i adds adds[i] to the running sum, subtracts subs[i], and divides by counts[i].
    Where the C++ only adds (the window is still growing) or only subtracts (it is shrinking
    at the end), the other row is zeros: x + 0 and x - 0 are exact. Also returns the running
    sum after the C++'s first phase (adds, no writes).
    """
    n, lanes = len(rows), len(rows[0])
    half = (window + 2) // 2
    zero = np.zeros(lanes, dtype=F32)
    adds = rows[half - 1 :] + [zero] * (half - 1)
    subs = [zero] * (window - half + 1) + rows[: n - window + half - 1]
    counts = _box_counts(n, window)
    total = np.zeros(lanes, dtype=F32)
    for row in rows[: half - 1]:
        np.add(total, row, total)
    return total, adds, subs, counts


def box_into_transposed(x: Floats, window: int, out_t: Floats) -> None:
    """One box pass along axis 0 of x (n x m), written transposed into out_t (m x n).

    Every step is one float32 add and one subtract over all m lanes at once, in the C++'s
    order, so the running sums round exactly as the C++'s do. Outputs collect in a small
    buffer and go out transposed (and divided) a block at a time.
    """
    total, adds, subs, counts = _box_plan(list(x), window)
    n, lanes = x.shape
    buffer = _image("box block", min(_BOX_BLOCK, n), lanes)
    out_rows = list(buffer)
    add, subtract = np.add, np.subtract
    for start in range(0, n, _BOX_BLOCK):
        stop = min(start + _BOX_BLOCK, n)
        for out, a, s in zip(out_rows, adds[start:stop], subs[start:stop]):
            add(total, a, out)
            subtract(out, s, out)
            total = out
        # The buffer is reused by the next block.
        total = total.copy()
        block = buffer[: stop - start]
        # Mid-row every step divides by the full window: a scalar divides faster than a column.
        divisor = counts[start] if counts[start] == counts[stop - 1] == window else counts[start:stop, None]
        np.divide(block, divisor, out=block)
        _transpose_into(block, out_t[:, start:stop])


def _pairs_into(x: Floats, window: int, first: int, stop: int, rows: Floats) -> None:
    """rows[0::2], rows[1::2] = what box1DFloat pairs first..stop-1 add and subtract (negated).

    Pair i adds x[i] and subtracts x[i - window]; zeros where the C++ only adds (pairs before
    `window`) or only subtracts (pairs past the n rows of x): s + 0 and s - 0 are exactly s.
    """
    n = len(x)
    adds, subs = rows[0::2], rows[1::2]
    end = min(stop, n)
    if first < end:
        adds[: end - first] = x[first:end]
    adds[max(end - first, 0) :] = 0
    start = max(first, window)
    subs[: max(start - first, 0)] = 0
    if start < stop:
        np.negative(x[start - window : stop - window], out=subs[start - first :])


def _box_sampled_stepwise(x: Floats, window: int, keep: Sequence[int]) -> Floats:
    """box_sampled with one numpy add and subtract per step over all lanes, as box_into_transposed."""
    total, adds, subs, counts = _box_plan(list(x), window)
    out = np.empty((len(keep), x.shape[1]), dtype=F32)
    add, subtract = np.add, np.subtract
    done = 0
    for j, k in enumerate(keep):
        for a, s in zip(adds[done : k + 1], subs[done : k + 1]):
            add(total, a, total)
            subtract(total, s, total)
        done = max(done, k + 1)
        np.divide(total, counts[k], out=out[j])
    return out


def box_sampled(x: Floats, window: int, keep: Sequence[int]) -> Floats:
    """One box pass along axis 0 of x (n x lanes), returning only the outputs listed in keep (sorted).

    Output k is box1DFloat's running sum after its first k + lead (add, subtract) pairs,
    divided by its count. The pairs' values are laid out one row each, interleaved (x[i],
    -x[i - window]), after the sum so far; np.add.reduce along axis 0 of a C-contiguous
    block adds its rows one after another, element-wise across the lanes, which is exactly
    the C++'s sequence of float32 roundings (s + (-v) is s - v), in one call per sample
    instead of two calls per step. (np.add.accumulate would keep every sum in one call too,
    but it walks one lane at a time, each add waiting for the one before: about 3 ns per
    value here, several times the per-step loop.) numpy sums pairwise only when the reduced
    axis is the innermost one, so a single lane is widened with a zero lane.
    """
    n, lanes = x.shape
    if lanes >= _STEPWISE_LANES:
        return _box_sampled_stepwise(x, window, keep)
    if lanes < 2:
        return box_sampled(np.hstack((x, np.zeros_like(x))), window, keep)[:, :lanes]
    lead = (window + 2) // 2 - 1
    ends = [k + lead + 1 for k in keep]
    out = np.empty((len(keep), lanes), dtype=F32)
    piece = max(1, _PIECE_FLOATS // lanes)
    buffer = np.empty((1 + 2 * piece, lanes), dtype=F32)
    buffer[0] = 0
    done, j = 0, 0
    while j < len(ends):
        # Whole intervals between samples while they fit, else part of one interval.
        stop = max((e for e in ends[j:] if e <= done + piece), default=done + piece)
        rows = buffer[: 1 + 2 * (stop - done)]
        _pairs_into(x, window, done, stop, rows[1:])
        start = 0
        while j < len(ends) and ends[j] <= stop:
            end = 2 * (ends[j] - done)
            np.add.reduce(rows[start : end + 1], axis=0, out=out[j])
            # The sum so far replaces the last row it consumed, heading the next interval.
            rows[end] = out[j]
            start, j = end, j + 1
        if start < len(rows) - 1:
            np.add.reduce(rows[start:], axis=0, out=out[j])
            rows[-1] = out[j]
        buffer[0] = rows[-1]
        done = stop
    out /= _box_counts(n, window)[np.asarray(keep)][:, None]
    return out


def downsample(lt: Floats) -> Floats:
    """The 64x64 image-domain buffer from W x H (transposed) luma: jaroszFilterFloat + decimateFloat.

    Two rounds of a horizontal then a vertical box pass; only the 64 sampled columns of the
    third pass and the 64 sampled rows of the fourth are produced, since nothing else is read.
    Overwrites lt (its memory holds the second pass).
    """
    cols, rows = lt.shape
    if rows == SIDE and cols == SIDE:
        # The C++ skips the filter for input that is already 64x64.
        return np.ascontiguousarray(lt.T)
    along_rows, along_cols = jarosz_window(cols), jarosz_window(rows)
    pass1 = _image("pass 1", rows, cols)
    box_into_transposed(lt, along_rows, pass1)
    pass2 = lt
    box_into_transposed(pass1, along_cols, pass2)
    pass3 = box_sampled(pass2, along_rows, decimation_indices(cols))
    # The fourth pass runs down the 64 sampled columns: rows are its steps, columns its lanes.
    return box_sampled(np.ascontiguousarray(pass3.T), along_cols, decimation_indices(rows))


def _dct_matrix() -> Floats:
    # dct_matrix_64: float scale times a double cosine, rounded to float per entry.
    scale = float(F32(math.sqrt(2.0 / 64.0)))
    matrix = np.empty((16, 64), dtype=F32)
    for i in range(16):
        for j in range(64):
            matrix[i, j] = scale * math.cos((math.pi / 2.0 / 64.0) * (i + 1) * (2 * j + 1))
    return matrix


_DCT = _dct_matrix()
_DCT_T = np.ascontiguousarray(_DCT.T)


def dct16(image: Floats) -> Floats:
    """dct64To16: B = D A D^T, each sum taken in k order from 0 in float32, as the C++ does.

    The products are laid out with k first in a C-contiguous array so that numpy's reduction
    over axis 0 adds them one k after the other (numpy only sums pairwise along the innermost
    axis); the tests compare the floats with pdqhash.compute_float.
    """
    products = np.empty((64, 16, 64), dtype=F32)
    np.multiply(_DCT_T[:, :, None], image[:, None, :], out=products)  # [k, i, j] = D[i,k] A[k,j]
    partial = np.add.reduce(products, axis=0)
    products2 = np.empty((64, 16, 16), dtype=F32)
    np.multiply(partial.T[:, :, None], _DCT_T[:, None, :], out=products2)  # [k, i, j] = T[i,k] D[j,k]
    result: Floats = np.add.reduce(products2, axis=0)
    return result


def quality(image: Floats) -> int:
    """pdqImageDomainQualityMetric: summed truncated gradients of the 64x64 buffer, / 90, capped."""
    total = 0
    for diff in (image[:-1, :] - image[1:, :], image[:, :-1] - image[:, 1:]):
        scaled = (diff * F32(100.0)) / F32(255.0)
        total += int(np.abs(scaled.astype(np.int32)).sum())
    return min(total // 90, 100)


def dct_hex(dct: Floats) -> str:
    """pdqBuffer16x16ToBits: bit i*16+j is set when B[i][j] exceeds the median.

    Torben's median of 256 values is the 128th smallest. Bit k of the C++ Hash256 is bit
    k & 15 of word k >> 4, and the hex (as pdqhash and pytx print it) starts at bit 255.
    """
    flat = dct.ravel()
    median = np.partition(flat, 127)[127]
    return np.packbits(flat[::-1] > median).tobytes().hex()


def pdq_float(rgb: npt.NDArray[np.uint8]) -> tuple[Floats, int]:
    """The 16x16 DCT before thresholding and the quality (pdqFloat256FromFloatLuma)."""
    lt = _image("luma", rgb.shape[1], rgb.shape[0])
    _luma_transposed_into(rgb, lt)
    image = downsample(lt)
    return dct16(image), quality(image)


def pdq_hex(rgb: npt.NDArray[np.uint8]) -> tuple[str, int]:
    """(64 hex digits, quality) equal to pdqhash.compute on the same uint8 H x W x 3 array."""
    if min(rgb.shape[:2]) < MIN_HASHABLE_DIM:
        return ZERO_HEX, 0
    dct, q = pdq_float(rgb)
    return dct_hex(dct), q
