"""Bucket boundaries of the multi-index tables in about 1 byte per bucket instead of 4.

Per chunk, the rows whose chunk value is k are order[c, offsets[k]:offsets[k + 1]], where
`offsets` is the running row count over the 2**width buckets (uint32). With the chunk widths
that keep candidates few (a bucket per ~1-2 codes) that table alone would cost 16-32 bytes per
hash, more than the memory budget can give.

Kept instead, per chunk: every offset modulo 2**8 (`low`, uint8) and the exact offset at the
start of each block of 64 buckets (`high`, uint32). If no block holds 256 rows or more, the
uint8 differences are exact: a bucket's length is low[k + 1] - low[k] and its start is
high[block] + (low[k] - high[block]), both modulo 2**8. That is 1 + 4/64 bytes per bucket. A
table with a fuller block (codes crowding some chunk values: duplicates, degenerate hashes)
takes the next layout that fits: uint16 with blocks of 256 buckets (2 + 4/256 bytes per
bucket), else plain uint32 offsets. Every layout is exact; only the size differs.
"""

from __future__ import annotations

import numpy as np

# (low dtype, log2 of buckets per block), smallest first. A block must hold fewer rows than
# the low dtype can count; at the loads the chunk widths are chosen for (about 1-2 rows per
# bucket, see expected_bytes) a 64-bucket block holds ~100 rows, a 256-bucket block ~400.
LAYOUTS: tuple[tuple[type[np.unsignedinteger], int], ...] = ((np.uint8, 6), (np.uint16, 8))
_LOW_BITS = {np.uint8: 8, np.uint16: 16}


def _block_log2(layout: int, width: int) -> int:
    return min(LAYOUTS[layout][1], width)


class BucketOffsets:
    """Start and length of every bucket's run of rows, for all chunks of one table set."""

    def __init__(self, width: int, high: np.ndarray, low: np.ndarray | None, block_log2: int) -> None:
        self.width = width
        self.chunks = int(high.shape[0])
        self.block_log2 = block_log2 if low is not None else 0
        # (chunks, 2**(width - block_log2) + 1) uint32; every offset when `low` is None.
        self.high = high
        self.low = low  # (chunks, 2**width + 1) uint8 or uint16, or None

    @property
    def low_bits(self) -> int:
        """Bits of the stored low parts (8 or 16), 0 for plain uint32 offsets."""
        return 0 if self.low is None else _LOW_BITS[self.low.dtype.type]

    @property
    def nbytes(self) -> int:
        return int(self.high.nbytes + (0 if self.low is None else self.low.nbytes))

    @staticmethod
    def expected_bytes(width: int, count: int) -> int:
        """Bytes per chunk for `count` uniformly spread codes: the smallest layout whose blocks
        would hold at most half of what its low dtype counts, so that the layout survives
        ordinary unevenness. Crowded real data can need a larger layout (see the module doc)."""
        load = count / (1 << width)
        for dtype, block_log2 in LAYOUTS:
            s = min(block_log2, width)
            if load * (1 << s) <= (1 << (8 * np.dtype(dtype).itemsize)) / 2:
                return np.dtype(dtype).itemsize * ((1 << width) + 1) + 4 * ((1 << (width - s)) + 1)
        return 4 * ((1 << width) + 1)

    @classmethod
    def from_full(cls, offsets: np.ndarray) -> BucketOffsets:
        """From plain (chunks, 2**width + 1) uint32 offsets (e.g. an index saved before this layout)."""
        width = int(offsets.shape[1] - 1).bit_length() - 1
        builder = OffsetsBuilder(int(offsets.shape[0]), width)
        for c in range(offsets.shape[0]):
            builder.add(c, offsets[c])
        return builder.finish()

    def lookup(self, chunk: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(start, length) of bucket keys[..., j] of chunk chunk[j]: uint32 starts, unsigned
        lengths. `chunk` is int64 of shape (p,), `keys` uint32 of shape (..., p)."""
        at = chunk * ((1 << self.width) + 1) + keys
        if self.low is None:
            flat = self.high.reshape(-1)
            starts = flat.take(at)
            return starts, flat.take(at + 1) - starts
        low = self.low.reshape(-1)
        below = low.take(at)
        # Unsigned arithmetic in the low dtype wraps: the modulo the layout relies on.
        lengths = low.take(at + 1) - below
        block = chunk * ((1 << (self.width - self.block_log2)) + 1) + (keys >> self.block_log2)
        base = self.high.reshape(-1).take(block)
        return base + (below - base.astype(self.low.dtype)), lengths

    def chunk_offsets(self, c: int) -> np.ndarray:
        """Plain uint32 offsets (2**width + 1) of chunk c."""
        if self.low is None:
            out: np.ndarray = self.high[c].copy()
            return out
        base = np.repeat(self.high[c, :-1], 1 << self.block_log2)
        full = np.empty((1 << self.width) + 1, dtype=np.uint32)
        full[:-1] = base + (self.low[c, :-1] - base.astype(self.low.dtype))
        full[-1] = self.high[c, -1]
        return full

    def grown(self, keys: list[np.ndarray]) -> BucketOffsets:
        """These offsets with one more row in bucket k of chunk c for each k in keys[c] (any
        order, repeats allowed): the offsets of the tables after new rows are appended.

        In place of decoding and re-encoding every chunk (several passes over 2**width uint32
        values), the compact layout is updated in its own dtype: adding the running count of new
        keys to `low` modulo 2**8 (or 2**16) is what the new offsets are modulo that, and `high`
        gains the count of new keys below each block's first bucket. When some block outgrows
        the layout, the builder re-encodes every chunk (the layout grows; the answers stay exact).
        """
        if len(keys) != self.chunks:
            raise ValueError(f"{len(keys)} key arrays for {self.chunks} chunks")
        if self.low is not None:
            block_starts = np.arange(self.high.shape[1], dtype=np.int64) << self.block_log2
            high = np.empty_like(self.high)
            low = np.empty_like(self.low)
            limit = 1 << (8 * self.low.itemsize)
            for c, chunk_keys in enumerate(keys):
                ordered = np.sort(chunk_keys.astype(np.int64))
                np.add(self.high[c], np.searchsorted(ordered, block_starts), out=high[c], casting="unsafe")
                if (np.diff(high[c]) >= limit).any():
                    break
                below = np.zeros(low.shape[1], dtype=self.low.dtype)
                np.add.at(below, ordered + 1, 1)  # wraps in the low dtype: the layout's modulo
                np.cumsum(below, dtype=below.dtype, out=below)
                np.add(self.low[c], below, out=low[c])
            else:
                return BucketOffsets(self.width, high, low, self.block_log2)
        builder = OffsetsBuilder(self.chunks, self.width)
        for c, chunk_keys in enumerate(keys):
            full = self.chunk_offsets(c)
            full[1:] += np.cumsum(np.bincount(chunk_keys, minlength=1 << self.width)).astype(np.uint32)
            builder.add(c, full)
        return builder.finish()

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays to save, by name; `load_arrays` restores them."""
        if self.low is None:
            return {"offsets": self.high}
        return {"offsets_low": self.low, "offsets_high": self.high}

    @staticmethod
    def shapes(chunks: int, width: int, low_bits: int) -> dict[str, tuple[type, tuple[int, int]]]:
        """dtype and shape of each saved array of a table with `low_bits` (0, 8 or 16)."""
        if low_bits == 0:
            return {"offsets": (np.uint32, (chunks, (1 << width) + 1))}
        layout = [_LOW_BITS[dtype] for dtype, _ in LAYOUTS].index(low_bits)
        s = _block_log2(layout, width)
        return {
            "offsets_low": (LAYOUTS[layout][0], (chunks, (1 << width) + 1)),
            "offsets_high": (np.uint32, (chunks, (1 << (width - s)) + 1)),
        }

    @classmethod
    def load_arrays(cls, width: int, arrays: dict[str, np.ndarray]) -> BucketOffsets:
        """From arrays named as `arrays()` names them (checked against `shapes` by the caller)."""
        if "offsets_low" in arrays:
            high, low = arrays["offsets_high"], arrays["offsets_low"]
            block_log2 = int(high.shape[1] - 1).bit_length() - 1
            return cls(width, high, low, width - block_log2)
        return cls.from_full(arrays["offsets"])

    def valid(self, count: int) -> bool:
        """Every chunk's buckets, as `lookup` reads them, tile rows 0 to `count` in order: the
        first starts at 0, each starts where the one before ends, the last ends at `count` (a
        loaded table that fails this would index outside the order array, or miss rows); and,
        compact, each block's first bucket starts at the block's stored offset (a first low
        entry off by one still tiles, handing the bucket's first row to the one before it).

        Checked in the compact layout itself, a byte per bucket, instead of decoding every
        chunk to uint32 offsets: every worker of a restarted server runs this on the mapped
        tables (about 0.9 s of CPU at 10M hashes when it decoded them)."""
        if self.low is None:
            for c in range(self.chunks):
                full = self.high[c]
                if full[0] != 0 or full[-1] != count or (np.diff(full) > count).any():
                    return False
            return True
        limit = 1 << self.low_bits
        block = 1 << self.block_log2
        for c in range(self.chunks):
            high, low = self.high[c].astype(np.int64), self.low[c]
            per_block = np.diff(high)
            if high[0] != 0 or high[-1] != count or (per_block < 0).any() or (per_block >= limit).any():
                return False
            # Each block's first bucket starts at the block's exact offset...
            if not np.array_equal(low[:-1:block], high[:-1].astype(low.dtype)):
                return False
            # ...and its bucket lengths (differences of `low`, wrapping in its dtype, as lookup
            # takes them) add up to the block's row count. Lengths are >= 0 and the block holds
            # fewer rows than the dtype counts, so no running sum wraps: the starts inside the
            # block rise from its offset to the next block's.
            lengths = np.diff(low)
            if not np.array_equal(lengths.reshape(-1, block).sum(axis=1, dtype=np.int64), per_block):
                return False
        return True


class OffsetsBuilder:
    """Takes one chunk's plain offsets at a time, so a build never holds every chunk's uint32
    table, and keeps the smallest layout that fits every chunk added so far."""

    def __init__(self, chunks: int, width: int) -> None:
        self.width = width
        self.chunks = chunks
        self._done = 0
        self._layout = 0
        self._alloc()

    def _alloc(self) -> None:
        buckets = (1 << self.width) + 1
        if self._layout < len(LAYOUTS):
            dtype, _ = LAYOUTS[self._layout]
            s = _block_log2(self._layout, self.width)
            self._high = np.empty((self.chunks, (1 << (self.width - s)) + 1), dtype=np.uint32)
            self._low: np.ndarray | None = np.empty((self.chunks, buckets), dtype=dtype)
        else:
            self._high = np.empty((self.chunks, buckets), dtype=np.uint32)
            self._low = None

    def _store(self, c: int, offsets: np.ndarray) -> bool:
        """Encode chunk c in the current layout; False if some block is too full for it."""
        if self._low is None:
            self._high[c] = offsets
            return True
        s = _block_log2(self._layout, self.width)
        starts = offsets[:: 1 << s]
        if (np.diff(starts) >= 1 << (8 * self._low.itemsize)).any():
            return False
        self._high[c] = starts
        np.bitwise_and(offsets, (1 << (8 * self._low.itemsize)) - 1, out=self._low[c], casting="unsafe")
        return True

    def add(self, c: int, offsets: np.ndarray) -> None:
        if c != self._done:
            raise ValueError(f"chunk {c} added out of order (expected {self._done})")
        while not self._store(c, offsets):
            # Move the chunks already added to the next larger layout that holds them all
            # (plain uint32 always does).
            before = self.finish(partial=True)
            while True:
                self._layout += 1
                self._alloc()
                if all(self._store(e, before.chunk_offsets(e)) for e in range(c)):
                    break
        self._done += 1

    def finish(self, partial: bool = False) -> BucketOffsets:
        if not partial and self._done != self.chunks:
            raise ValueError(f"{self._done} of {self.chunks} chunks added")
        n = self._done if partial else self.chunks
        low = None if self._low is None else self._low[:n]
        s = _block_log2(self._layout, self.width) if self._layout < len(LAYOUTS) else 0
        return BucketOffsets(self.width, self._high[:n], low, s)
