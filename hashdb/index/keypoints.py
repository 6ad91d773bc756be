"""Candidates for keypoint verification: every stored keypoint's descriptor in one FAISS binary
index, each query descriptor voting for the image of its nearest stored descriptor. Add-only,
keyed by record id: whoever holds it drops what is no longer live. Saved and loaded whole
(_files.py's atomic save); which rows it covers and whose they are is the caller's to check."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hashdb.errors import IndexStale
from hashdb.index._files import KEYPOINTS, Manifest, load_npy, npy_writer, read_manifest, write_saved

# A descriptor votes when its nearest stored descriptor is within this many of its 256 bits
# and nearer than RATIO times the nearest descriptor of another image (Lowe's ratio test; an
# image's own repeated patterns do not fail it). The CANDIDATES images with most votes, at
# least MIN_VOTES, go to verification (BENCHMARKS.md, "Crops: local features").
MAX_DISTANCE = 64
RATIO = 0.8
# Neighbours read for each query descriptor, and how close two stored descriptors must be to
# count as one keypoint stored twice (a re-encoded copy moves a descriptor by a few bits;
# unrelated descriptors lie about 128 of 256 apart).
NEIGHBOURS = 8
TWIN_BITS = 16
_POPCOUNT = np.array([bin(n).count("1") for n in range(256)], dtype=np.uint8)
MIN_VOTES = 3
CANDIDATES = 5
# Up to this many descriptors (10 images) a flat scan is exact and fast enough (a query's
# 1,000 against 4,000 took 4.6 ms); past it an inverted file of about LIST_SIZE descriptors a
# list, one list probed: probing 4 or 16 found no more own images in the measurement and cost
# 2 to 5 times as much.
FLAT_MAX = 2_000
LIST_SIZE = 400
# The lists are trained once, on a sample (k-means of few rounds: a coarse quantizer needs no
# more, and FAISS's default of 25 rounds on 256 points a list costs minutes at thousands of
# lists); trained again when the index has grown this many times past its training.
RETRAIN_GROWTH = 4
# At most this many lists: training and assigning cost grow with lists x descriptors, and a
# lookup that opens a large database builds its index first (1M descriptors, 5,000 images: 9.4 s
# of CPU at 2,500 lists, 2.4 s at 1,024; a query's search 5.8 against 7.0 ms).
MAX_LISTS = 1024
_TRAIN_ROUNDS = 6
_TRAIN_PER_LIST = 40


_CHECKSUM = "crc32_"


def _crc32(path: Path) -> int:
    """zlib's CRC-32 of a file, read in blocks (about 4 GB/s: 0.04 s for the 156 MB of 10,000
    images' index), so a damaged file is told from a whole one before it is used."""
    crc = 0
    try:
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                crc = zlib.crc32(block, crc)
    except OSError as exc:
        raise IndexStale(f"saved keypoint index file {path.name} is unreadable ({exc.strerror or exc})") from None
    return crc


def _faiss() -> Any:
    import faiss

    # One OpenMP thread, as FaissIndex (faiss_index.DEFAULT_THREADS): a folder's lookup
    # hashes in one worker process per core beside this one, and FAISS's threads spinning
    # for work beside them took a 60-file lookup from 1.4-1.7 s to 2.3-2.8 s on 2 cores.
    faiss.omp_set_num_threads(1)
    return faiss


class KeypointIndex:
    def __init__(self, bits: int = 256) -> None:
        self.bits = bits
        self._owners = np.empty(0, dtype=np.int64)
        self._codes: list[npt.NDArray[np.uint8]] = []  # every added block, for retraining
        self._index: Any = None
        self._quantizer: Any = None
        self._trained_at = 0

    def __len__(self) -> int:
        return len(self._owners)

    def add(self, record_ids: Sequence[int], descriptors: Sequence[npt.NDArray[np.uint8]]) -> None:
        """Each record's descriptors (n x bits/8 uint8)."""
        blocks = [np.ascontiguousarray(d, dtype=np.uint8).reshape(-1, self.bits // 8) for d in descriptors]
        if not blocks:
            return
        owners = np.concatenate([np.full(len(b), rid, np.int64) for rid, b in zip(record_ids, blocks, strict=True)])
        codes = np.concatenate(blocks)
        self._codes.append(codes)
        self._owners = np.concatenate([self._owners, owners])
        total = len(self._owners)
        grown = total >= RETRAIN_GROWTH * max(self._trained_at, FLAT_MAX // RETRAIN_GROWTH)
        if self._index is None or (total > FLAT_MAX and grown):
            self._build()
        else:
            self._index.add(codes)

    def _build(self) -> None:
        faiss = _faiss()
        codes = np.concatenate(self._codes) if len(self._codes) > 1 else self._codes[0]
        self._codes = [codes]
        index: Any
        if len(codes) <= FLAT_MAX:
            index = faiss.IndexBinaryFlat(self.bits)
        else:
            lists = min(MAX_LISTS, max(1, len(codes) // LIST_SIZE))
            quantizer = faiss.IndexBinaryFlat(self.bits)
            index = faiss.IndexBinaryIVF(quantizer, self.bits, lists)
            self._quantizer = quantizer  # FAISS's IVF does not own it: it must outlive the index
            sample = np.random.default_rng(0).choice(len(codes), min(len(codes), _TRAIN_PER_LIST * lists),
                                                     replace=False)
            index.cp.niter = _TRAIN_ROUNDS
            index.train(codes[np.sort(sample)])
            index.nprobe = 1
        index.add(codes)
        self._index = index
        self._trained_at = len(codes)

    def save(self, path: Path, covers_row: int, owner: str) -> None:
        """Write atomically: the FAISS index as trained and filled (a load neither trains nor
        assigns again), its owners and codes as .npy. `covers_row`: the last store row it
        holds; `owner`: whose rows those are, for the loader to check."""
        faiss = _faiss()
        index = self._index if self._index is not None else faiss.IndexBinaryFlat(self.bits)
        codes = self._all_codes() if self._codes else np.empty((0, self.bits // 8), np.uint8)
        params = {"trained_at": self._trained_at}  # and each file's checksum, as written

        def checked(role: str, write: Callable[[Path], None]) -> Callable[[Path], None]:
            def writer(target: Path) -> None:
                write(target)
                params[_CHECKSUM + role] = _crc32(target)
            return writer

        write_saved(
            Path(path), kind=KEYPOINTS, bits=self.bits, covers_seq=covers_row, count=len(self._owners),
            writers={"faiss": checked("faiss", lambda target: faiss.write_index_binary(index, str(target))),
                     "owners": checked("owners", npy_writer(self._owners)),
                     "codes": checked("codes", npy_writer(codes))},
            params=params, owner=owner,
        )

    @classmethod
    def load(cls, path: Path, bits: int = 256) -> tuple[KeypointIndex, Manifest]:
        """What `save` wrote, with its manifest; anything unreadable or inconsistent is
        `IndexStale` (the remedy is a rebuild from the store)."""
        faiss = _faiss()
        path = Path(path)
        manifest = read_manifest(path, (KEYPOINTS,))
        count, trained_at = manifest.count, manifest.params.get("trained_at", -1)
        for role in ("faiss", "owners", "codes"):
            if _CHECKSUM + role not in manifest.params:
                raise IndexStale("saved keypoint index has no checksums (an earlier hashdb saved it)")
            # Changed in place, a file still reads: FAISS then names descriptors the owners do
            # not hold, or the owners other records, and crops go unmatched without a word.
            if _crc32(manifest.file(path, role)) != manifest.params[_CHECKSUM + role]:
                raise IndexStale(f"saved keypoint index file {manifest.file(path, role).name} does not match "
                                 "its checksum")
        faiss_path = manifest.file(path, "faiss")
        try:
            index = faiss.read_index_binary(str(faiss_path))
        except RuntimeError as exc:
            why = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise IndexStale(f"saved keypoint index {faiss_path.name} is unreadable ({why})") from None
        # Mapped copy-on-write: read only where a search lands (its twin check), never copied whole.
        owners = load_npy(manifest.file(path, "owners"), np.int64, (count,), mapped=True)
        codes = load_npy(manifest.file(path, "codes"), np.uint8, (count, bits // 8), mapped=True)
        flat = isinstance(index, faiss.IndexBinaryFlat)
        inverted = isinstance(index, faiss.IndexBinaryIVF) and index.is_trained
        if (manifest.bits != bits or not (flat or inverted) or index.d != bits or index.ntotal != count
                or not 0 <= trained_at <= count):
            raise IndexStale(f"saved keypoint index {path} does not match its manifest; rebuild it")
        loaded = cls(bits)
        if count:
            if inverted:
                index.nprobe = 1
            loaded._index, loaded._owners, loaded._codes, loaded._trained_at = index, owners, [codes], trained_at
        return loaded, manifest

    def _all_codes(self) -> npt.NDArray[np.uint8]:
        if len(self._codes) > 1:  # blocks added since, joined once at the next search
            self._codes = [np.concatenate(self._codes)]
        return self._codes[0]

    def candidates(self, descriptors: npt.NDArray[np.uint8], skip: frozenset[int] = frozenset()) -> list[int]:
        """The record ids most of the query's descriptors vote for, most votes first; records in
        `skip` (already matched) neither vote nor are voted for.

        A descriptor votes for the image of its nearest stored descriptor, and for every other
        record holding a twin of it (within TWIN_BITS): the same picture stored twice (by two
        members, or as two files) is one picture, not a rival that fails Lowe's ratio test for
        both, which had stopped a picture's crops from matching once a second member shared it
        (found in trial). The rival is the nearest descriptor of another record that is no twin."""
        if self._index is None or not len(descriptors):
            return []
        k = min(NEIGHBOURS, len(self._owners))
        distances, ids = self._index.search(np.ascontiguousarray(descriptors, dtype=np.uint8), k)
        if ids.size and int(ids.max()) >= len(self._owners):
            # A saved index damaged inside FAISS's file, where its manifest and sizes could not tell.
            raise IndexStale("keypoint index names descriptors it does not hold")
        found = ids >= 0
        owners = np.where(found, self._owners[np.maximum(ids, 0)], -1)
        if skip:
            owners = np.where(np.isin(owners, np.fromiter(skip, np.int64)), -1, owners)
        codes = self._all_codes()
        nearest = codes[np.maximum(ids, 0)]  # (queries, k, bytes)
        twin = (_POPCOUNT[nearest ^ nearest[:, :1, :]].sum(axis=2, dtype=np.int64) <= TWIN_BITS) & (owners >= 0)
        far = np.iinfo(np.int64).max
        d = distances.astype(np.int64)
        best = owners[:, 0]
        rivals = np.where((owners >= 0) & ~twin & (owners != best[:, None]), d, far)
        rival = rivals.min(axis=1)
        voting = (best >= 0) & (d[:, 0] <= MAX_DISTANCE) & (d[:, 0] < RATIO * rival)
        counts: Counter[int] = Counter()
        for row in np.flatnonzero(voting):
            counts.update(set(owners[row][twin[row]].tolist()))
        return [rid for rid, n in counts.most_common(CANDIDATES) if n >= MIN_VOTES]
