"""Transparent huge pages for the code array the multi-index gathers candidates from.

A single PDQ search at 50M hashes gathers ~17k random 32-byte codes out of 1.6 GB. On 4 KiB
pages nearly every one of those reads also misses the TLB (in a VM, a two-level page walk):
the gather took 1.1 ms of a 1.6 ms query; from 2 MiB pages the same gathers take about half
as long (BENCHMARKS.md, "Index at 50M"). numpy already asks for huge pages for its own large
arrays (the multi-index tables); FAISS keeps the codes in plain malloc memory, so the kernel
is asked here: MADV_HUGEPAGE, then MADV_COLLAPSE (Linux 6.1+) to convert pages already
written. Where either is unsupported this does nothing: memory use and answers are the same
either way, only the speed differs.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from collections.abc import Callable

import numpy as np

_MADV_HUGEPAGE = 14
_MADV_COLLAPSE = 25
_HUGE_PAGE = 1 << 21
# Below this (2M PDQ codes) the gathers are cheap enough that a collapse (0.9 s of kernel CPU
# for 640 MB, measured here) is not worth it.
MIN_BYTES = 64 << 20


def _load_madvise() -> Callable[[int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_madvise = _load_madvise()


def _span(array: np.ndarray) -> tuple[int, int] | None:
    """The whole huge pages inside the array's buffer, as (start, length), or None."""
    if _madvise is None or array.nbytes < MIN_BYTES:
        return None
    start = array.ctypes.data
    lo = -(-start // _HUGE_PAGE) * _HUGE_PAGE
    hi = (start + array.nbytes) // _HUGE_PAGE * _HUGE_PAGE
    return (lo, hi - lo) if hi > lo else None


def _advise(lo: int, length: int) -> bool:
    assert _madvise is not None
    # The kernel checks the range; a failure (old kernel, no THP) just leaves small pages.
    if _madvise(lo, length, _MADV_HUGEPAGE) != 0:
        return False
    return _madvise(lo, length, _MADV_COLLAPSE) == 0


def huge_pages(array: np.ndarray) -> bool:
    """Back the array's memory with huge pages now (a copy inside the kernel: ~1 s of CPU per
    GB here). True if the kernel did it."""
    span = _span(array)
    return span is not None and _advise(*span)


def huge_pages_soon(array: np.ndarray) -> threading.Thread | None:
    """The same in a background thread (ctypes releases the GIL), for a caller that must not
    wait. The kernel keeps the bytes intact while it converts pages, and if the buffer is freed
    meanwhile the call fails harmlessly; only the address range is handed over, never the array."""
    span = _span(array)
    if span is None:
        return None
    thread = threading.Thread(target=_advise, args=span, name="hashdb-huge-pages", daemon=True)
    thread.start()
    return thread
