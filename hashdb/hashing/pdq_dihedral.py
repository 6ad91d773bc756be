"""PDQ of an image's 8 dihedral variants (rotations and mirror images) from one luma array,
bit-exact with hashing each Pillow transpose: the filter passes run on views and share work.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hashdb.hashing.pdq_core import (
    MIN_HASHABLE_DIM,
    SIDE,
    ZERO_HEX,
    Floats,
    _image,
    box_into_transposed,
    box_sampled,
    dct16,
    dct_hex,
    decimation_indices,
    jarosz_window,
    luma,
    quality,
)

# The 8 dihedral variants in python-threatexchange's order, each as the view of the luma L
# that Pillow's transpose produces: (name, from L.T, rows reversed, columns reversed).
# pytx's flipx is Pillow's FLIP_TOP_BOTTOM, flipy FLIP_LEFT_RIGHT, flipplus1 TRANSPOSE,
# flipminus1 TRANSVERSE, rotate90 ROTATE_90 (counter-clockwise).
DIHEDRAL = (
    ("original", False, False, False),
    ("rotate90", True, True, False),
    ("rotate180", False, True, True),
    ("rotate270", True, False, True),
    ("flipx", False, True, False),
    ("flipy", False, False, True),
    ("flipplus1", True, False, False),
    ("flipminus1", True, True, True),
)



def _downsample_flips(xt: Floats) -> dict[tuple[bool, bool], Floats]:
    """downsample() of the four flips of the image xt.T, keyed (rows reversed, columns reversed).

    A flip reverses the direction a box pass runs in, so each flip needs its own passes, but
    they share work: the first pass of both column directions runs once each and lands side
    by side in one array, so every second pass serves two variants with twice the lanes.
    """
    cols, rows = xt.shape
    along_rows, along_cols = jarosz_window(cols), jarosz_window(rows)
    keep_cols, keep_rows = decimation_indices(cols), decimation_indices(rows)
    pass1 = _image("flips pass 1", rows, 2 * cols)
    box_into_transposed(xt, along_rows, pass1[:, :cols])
    box_into_transposed(xt[::-1], along_rows, pass1[:, cols:])
    pass2 = _image("flips pass 2", 2 * cols, rows)
    keys: list[tuple[bool, bool]] = []
    sampled = []
    for flip_rows in (False, True):
        box_into_transposed(pass1[::-1] if flip_rows else pass1, along_cols, pass2)
        for flip_cols, half in ((False, pass2[:cols]), (True, pass2[cols:])):
            keys.append((flip_rows, flip_cols))
            sampled.append(box_sampled(half, along_rows, keep_cols))
    pass4 = box_sampled(np.ascontiguousarray(np.concatenate(sampled).T), along_cols, keep_rows)
    return {key: np.ascontiguousarray(pass4[:, SIDE * i : SIDE * (i + 1)]) for i, key in enumerate(keys)}


def pdq_dihedral_hex(rgb: npt.NDArray[np.uint8]) -> tuple[tuple[str, int], ...]:
    """pdq_hex of the 8 Pillow transposes of the image, in DIHEDRAL order, without transposing it.

    Luma is per pixel, so the luma of a transposed image is the transposed luma; the filter
    then runs on views of one luma array (see _downsample_flips).
    """
    if min(rgb.shape[:2]) < MIN_HASHABLE_DIM:
        return tuple((ZERO_HEX, 0) for _ in DIHEDRAL)
    plain = luma(rgb)
    if plain.shape == (SIDE, SIDE):
        images = {}
        for name, transposed, flip_rows, flip_cols in DIHEDRAL:
            base = plain.T if transposed else plain
            images[name] = np.ascontiguousarray(base[:: -1 if flip_rows else 1, :: -1 if flip_cols else 1])
    else:
        # Family "not transposed" filters L (its transposed layout is L.T); the other, L.T.
        by_family = {False: _downsample_flips(np.ascontiguousarray(plain.T)), True: _downsample_flips(plain)}
        images = {
            name: by_family[transposed][(flip_rows, flip_cols)]
            for name, transposed, flip_rows, flip_cols in DIHEDRAL
        }
    return tuple((dct_hex(dct16(images[name])), quality(images[name])) for name, *_ in DIHEDRAL)


def _cells(length: int) -> tuple[list[int], list[int], list[int]]:
    """Positions kept along an axis of this length (ascending, distinct), and for each of the
    64 cells of the upright and of the mirror image its index among them.

    A box pass with an even window run backwards is the forward pass one step earlier (odd
    windows are centred either way): two passes an axis, so the mirror image's cell i is the
    upright filtered image at length - 1 - cell_i + 2 * shift, away from the borders.
    """
    upright = decimation_indices(length)
    window = jarosz_window(length)
    lead = (window + 2) // 2 - 1
    shift = 2 * (window - 2 * lead - 1)
    mirrored = [min(max(length - 1 - u + shift, 0), length - 1) for u in upright]
    kept = sorted(set(upright) | set(mirrored))
    index = {p: i for i, p in enumerate(kept)}
    return kept, [index[p] for p in upright], [index[p] for p in mirrored]


def pdq_one_filter_hex(rgb: npt.NDArray[np.uint8]) -> tuple[tuple[str, int], ...]:
    """The 8 variants in DIHEDRAL order from one filter of the upright image: what lookups query.

    The upright image is filtered once and its last two passes keep up to 128 positions an
    axis, the cells of the upright and of the mirror image (_cells); a transpose only swaps
    the axes. So the 8 cost about one PDQ instead of about four. The first is pdq_hex(rgb) bit
    for bit; the others differ from the exact variants (pdq_dihedral_hex) in rounding and in
    the cells within two windows of a border only: a few bits, where pdqhash's sign flips of
    the upright DCT keep the upright cells, a few pixels off the turned image's own, and land
    tens of bits away on sharp-edged drawings (BENCHMARKS.md, "Image hashing end to end").
    The compiled kernel does the same (kernel.pdq with one_filter), float for float.
    """
    if min(rgb.shape[:2]) < MIN_HASHABLE_DIM:
        return tuple((ZERO_HEX, 0) for _ in DIHEDRAL)
    rows, cols = rgb.shape[:2]
    if rows == SIDE and cols == SIDE:
        return pdq_dihedral_hex(rgb)  # no filter at 64 x 64: the exact variants are transposes
    plain = luma(rgb)
    keep_rows, rows_up, rows_mirrored = _cells(rows)
    keep_cols, cols_up, cols_mirrored = _cells(cols)
    along_rows, along_cols = jarosz_window(cols), jarosz_window(rows)
    pass1 = _image("one filter pass 1", rows, cols)
    box_into_transposed(np.ascontiguousarray(plain.T), along_rows, pass1)
    pass2 = _image("one filter pass 2", cols, rows)
    box_into_transposed(pass1, along_cols, pass2)
    pass3 = box_sampled(pass2, along_rows, keep_cols)
    kept = box_sampled(np.ascontiguousarray(pass3.T), along_cols, keep_rows)
    out = []
    for _, transposed, flip_rows, flip_cols in DIHEDRAL:
        # A turned image's rows run along the upright columns when it is transposed.
        if transposed:
            down, across = (rows_mirrored if flip_cols else rows_up), (cols_mirrored if flip_rows else cols_up)
            cells = np.ascontiguousarray(kept[np.ix_(down, across)].T)
        else:
            down, across = (rows_mirrored if flip_rows else rows_up), (cols_mirrored if flip_cols else cols_up)
            cells = np.ascontiguousarray(kept[np.ix_(down, across)])
        out.append((dct_hex(dct16(cells)), quality(cells)))
    return tuple(out)
