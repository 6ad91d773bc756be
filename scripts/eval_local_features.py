"""Crops: would a local-feature signal (keypoints, binary descriptors, geometric verification)
find the cropped re-uploads PDQ misses? A measurement before building, not hashdb's matching.

The pool, known images, negatives and edited queries are those of `eval_matching.py`'s full
run with the same seed (the same corpus, the same near-duplicate rule, the same submissions,
the same random draws of which known image each query edits and how): this script builds them
through eval_matching's and eval_edits' own functions and looks every query and negative up
through hashdb's service, as eval_matching does, so "main" below is hashdb's matching on the
very same files. The local-feature side is this script's own matching logic, since it measures
a design not yet built:

  1. features: the image in grey, scaled to WORK_SIDE on its longer side (up or down, so that
     a small emoji and a 1,024-pixel photograph are described at one scale), then ORB, AKAZE
     or BRISK keypoints (OpenCV), the strongest `--stored` of a known image and the strongest
     `--query` of a query;
  2. candidates: every stored descriptor in one faiss binary IVF index (a flat index on a
     sample checks what the IVF loses); each query descriptor votes for the image of its
     nearest stored descriptor if it is within MAX_DISTANCE of the descriptor's bits and passes
     the ratio test against the second nearest; the CANDIDATES images with most votes (at least
     MIN_VOTES) go on;
  3. verification: the query's descriptors matched against the candidate's own (ratio test),
     then cv2.estimateAffinePartial2D with RANSAC (query -> stored positions); a pair is a match
     when it has at least `inliers` inliers, a scale and rotation a crop or re-framing can have
     (SCALE_RANGE, MAX_ROTATION), and inliers spread over a share of the query (MIN_SPREAD);
  4. aligned PDQ (align): the transform places the stored image's centred boxes (ALIGNED_SHARES)
     in the query; the largest inside it is cut from the query warped onto the stored frame and
     its PDQ compared with the stored image's PDQ of that box. Shared parts of different drawings
     (one deck's card borders, one theme's icon frame) pass 1 to 3; this is what tells them apart.

Each query's verification results (inliers, scale, rotation, spread per candidate) are kept,
so the tables for several operating points come from one pass. Costs: stored bytes per image,
and CPU ms per 1-megapixel query (decode, features, candidate search, verification), one
thread. Caches (pool and main's answers, features per detector) go to --cache, reused by later
runs with the same seed.

    .venv/bin/python scripts/eval_local_features.py --cache /tmp/lf     # full: 800 known, 5,000 negatives
    .venv/bin/python scripts/eval_local_features.py --size small --detectors orb
    PYTHONPATH=DIR .venv/bin/python scripts/eval_local_features.py --cache /tmp/lf --detectors akaze

Needs the Debian corpus (`scripts/system-packages.sh --eval`) and opencv (a dependency already).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import io
import json
import math
import pickle
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import faiss
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_corpus  # noqa: E402
import eval_edits  # noqa: E402
import eval_matching  # noqa: E402

from hashdb.cli.common import local_principal  # noqa: E402
from hashdb.hashing.pdq import PdqSignal  # noqa: E402
from hashdb.service.local import open_database  # noqa: E402

FAMILIES = ("crop_95_90", "crop_85", "crop_80", "logo_large", "screenshot", "caption_top", "rotate_small")
WORK_SIDE = 512
EXTRACTED = 1000  # keypoints kept per image at extraction; --stored and --query take the strongest
# Candidate search: a descriptor votes when its nearest stored descriptor is within this share
# of its bits and clearly nearer than the second (Lowe's ratio test).
MAX_DISTANCE = 0.25
RATIO = 0.8
MIN_VOTES = 3
CANDIDATES = 5
# Verification: RANSAC's reprojection threshold in work pixels (of WORK_SIDE), and what
# geometry a crop, a caption, a logo or a screenshot can give between query and stored image.
REPROJECTION = 6.0
SCALE_RANGE = (0.33, 3.0)
MAX_ROTATION = 12.0  # degrees; rotate_small turns by up to 5
MIN_SPREAD = 0.04  # inliers' bounding box over the query's area
INLIERS = (8, 10, 12, 15, 20, 30)  # operating points reported


# ----------------------------------------------------------------------------- features

@dataclasses.dataclass
class Features:
    points: np.ndarray  # float32 (n, 2), work pixels
    descriptors: np.ndarray  # uint8 (n, bytes)
    size: tuple[int, int]  # work copy's (width, height)


def detector(name: str) -> Any:
    if name == "orb":
        return cv2.ORB_create(nfeatures=EXTRACTED, scaleFactor=1.2, nlevels=8, edgeThreshold=19, patchSize=19,
                              fastThreshold=10)
    # OpenCV 5 moved AKAZE and BRISK to the contrib build's xfeatures2d (opencv-contrib-python-
    # headless, not a dependency: install it apart, e.g. `pip install --target DIR`, and put DIR
    # first on PYTHONPATH for the feature pass only; cached features are then reused).
    module: Any = cv2 if hasattr(cv2, "AKAZE_create") else getattr(cv2, "xfeatures2d", None)
    if name in ("akaze", "brisk") and module is None:
        raise SystemExit(f"{name} needs OpenCV's contrib build (opencv-contrib-python-headless)")
    if name == "akaze":
        return module.AKAZE_create(threshold=0.0005)
    if name == "brisk":
        return module.BRISK_create(thresh=20)
    raise ValueError(name)


def work_copy(image: Image.Image) -> np.ndarray:
    grey = np.asarray(image.convert("L"))
    h, w = grey.shape
    scale = WORK_SIDE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def extract(name: str, image: Image.Image) -> Features:
    return extract_grey(name, work_copy(image))


def extract_grey(name: str, grey: np.ndarray) -> Features:
    keypoints, descriptors = detector(name).detectAndCompute(grey, None)
    if descriptors is None or not keypoints:
        return Features(np.zeros((0, 2), np.float32), np.zeros((0, 64 if name != "orb" else 32), np.uint8),
                        (grey.shape[1], grey.shape[0]))
    order = np.argsort([-k.response for k in keypoints], kind="stable")[:EXTRACTED]
    points = np.array([keypoints[i].pt for i in order], np.float32)
    descriptors = descriptors[order]
    if descriptors.shape[1] % 8:  # AKAZE's 61 bytes, padded for faiss's binary indexes
        descriptors = np.pad(descriptors, ((0, 0), (0, 8 - descriptors.shape[1] % 8)))
    return Features(points, np.ascontiguousarray(descriptors), (grey.shape[1], grey.shape[0]))


@functools.lru_cache(maxsize=64)  # a photograph's file takes a second to decode; its crops follow each other
def source(key: str) -> Image.Image:
    image = eval_corpus.load_source(key)
    assert image is not None, key  # the pool holds only images that load
    return image


def decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def query_image(key: str, family: str, strength: int, seed: str) -> Image.Image:
    """The JPEG q90 upload of an edited copy, as eval_matching.query_job makes it."""
    spec = eval_edits.FAMILY[family]
    edited = spec.edit(source(key), random.Random(seed), spec.strengths[strength])
    return decode(eval_edits.encode(edited))


def _features_job(job: tuple[str, str, tuple[Any, ...]]) -> Features:
    name, kind, item = job
    if kind == "known":  # submitted lossless
        return extract(name, source(item[0]))
    if kind == "negative":  # looked up as its JPEG q90 upload
        return extract(name, decode(eval_edits.encode(source(item[0]))))
    return extract(name, query_image(*item))


# ----------------------------------------------------------------------------- the pool and main's answers

@dataclasses.dataclass
class Prepared:
    seed: int
    size: str
    known: list[str]
    negatives: list[str]
    queries: list[tuple[str, str, int, str]]  # (key, family, strength index, edit seed)
    main_own: list[bool]  # per query: main matched its own image
    main_other: list[list[str]]  # per query: other known images main matched
    main_fp: list[list[str]]  # per negative: known images main matched
    commit: str


def prepare(seed: int, size_name: str, families: Sequence[str], jobs: int, progress: bool) -> Prepared:
    """eval_matching's steps 1 to 4 for `families`, through its own functions: the same pool,
    submissions and draws as its run of the same size and seed (every family draws its query
    keys from one generator in eval_edits.FAMILIES order, so the draw skips no family)."""
    import subprocess

    size = eval_matching.SIZES[size_name]
    with tempfile.TemporaryDirectory(prefix="hashdb-lf-") as tmp:
        service = open_database(Path(tmp) / "eval.sqlite")
        actor = local_principal(service, "eval")
        workers = eval_matching.Workers(service.settings, jobs)
        need = size.known + size.negatives

        def shareable_hashes(hashed: Any) -> bool:
            return any(v.signal == "pdq" and (v.quality or 0) >= service.settings.pdq_min_quality
                       for v in hashed.hashes)

        def enough(items: list[Any]) -> bool:
            return len(items) >= need and sum(shareable_hashes(i.hashed) for i in items) >= size.known

        keys = eval_corpus.candidates("debian", seed, int(need * 1.35) + 50)
        pool = eval_matching.build_pool(workers, keys, enough, progress)
        owner: dict[int, str] = {}
        known: list[str] = []
        offered = [item for item in pool.items if shareable_hashes(item.hashed)]
        for chunk in eval_matching.batches(zip(offered, workers.map(eval_matching.submission_job,
                                                                    [item.key for item in offered]))):
            chosen = [(item, hashed) for item, (hashed, _) in chunk if shareable_hashes(hashed)]
            chosen = chosen[:size.known - len(known)]
            subs = [service.submission_for(hashed, [eval_matching.LABEL]) for _, hashed in chosen]
            for (item, _), result in zip(chosen, service.submit(subs, actor) if subs else []):
                known.append(item.key)
                for record_id in result.ids:
                    owner[record_id] = item.key
            if len(known) >= size.known:
                break
        known_set = set(known)
        negatives = [item for item in pool.items if item.key not in known_set][:size.negatives]
        service.load_index()
        rng = random.Random(seed)
        queries = []
        for family in eval_edits.FAMILIES:
            for q in range(size.per_family):
                key = known[rng.randrange(len(known))]
                if family.name in families:
                    queries.append((key, family.name, q % len(family.strengths), f"{seed}/{family.name}/{q}"))
        own: list[bool] = []
        other: list[list[str]] = []
        for batch in eval_matching.batches(zip(queries, workers.map(eval_matching.query_job, queries))):
            answers = service.lookup([service.query_for(hashed) for _, (hashed, _) in batch], actor)
            for (job, _), answer in zip(batch, answers):
                names = {owner.get(m.id) for m in answer.matches}
                own.append(job[0] in names)
                other.append(sorted(str(n) for n in names - {job[0], None}))
        fp: list[list[str]] = []
        for items in eval_matching.batches(negatives):
            answers = service.lookup([service.query_for(item.hashed) for item in items], actor)
            fp.extend(sorted({str(owner.get(m.id)) for m in answer.matches}) for answer in answers)
        workers.close()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent).stdout.strip()
    return Prepared(seed, size_name, known, [item.key for item in negatives], queries, own, other, fp, commit)


# ----------------------------------------------------------------------------- candidate search and verification

@dataclasses.dataclass
class Stored:
    """The known images' features as an index would hold them."""
    features: list[Features]
    owner: np.ndarray  # per stored descriptor: its image
    index: Any  # faiss binary index over every stored descriptor
    bits: int
    quantizer: Any = None  # the IVF's coarse quantizer, held as long as the index


def build_index(features: list[Features], stored: int, nlist: int, nprobe: int) -> Stored:
    kept = [dataclasses.replace(f, points=f.points[:stored], descriptors=f.descriptors[:stored]) for f in features]
    codes = np.ascontiguousarray(np.concatenate([f.descriptors for f in kept]))
    owner = np.concatenate([np.full(len(f.descriptors), i, np.int64) for i, f in enumerate(kept)])
    bits = codes.shape[1] * 8
    index: Any
    quantizer: Any = None
    if nlist:
        quantizer = faiss.IndexBinaryFlat(bits)
        index = faiss.IndexBinaryIVF(quantizer, bits, nlist)
        # k-means on a sample, few rounds: a coarse quantizer needs no more, and faiss's default
        # (256 codes a list, as floats, 25 rounds) costs minutes of CPU at 8,192 lists
        sample = np.random.default_rng(0).choice(len(codes), min(len(codes), 40 * nlist), replace=False)
        index.cp.niter = 6
        index.train(codes[np.sort(sample)])
        index.nprobe = nprobe
    else:
        index = faiss.IndexBinaryFlat(bits)
    index.add(codes)
    return Stored(kept, owner, index, bits, quantizer)


def candidates(stored: Stored, query: Features, skip: int = -1) -> list[int]:
    """The stored images most query descriptors vote for. A descriptor votes for the image of
    its nearest stored descriptor when that is within MAX_DISTANCE and nearer than RATIO times
    the nearest descriptor of another image (an image's own repeated patterns do not fail the
    ratio test); `skip` leaves one stored image out (a known image as its own query)."""
    if not len(query.descriptors):
        return []
    distances, ids = stored.index.search(query.descriptors, 3)
    owners = np.where(ids >= 0, stored.owner[np.maximum(ids, 0)], -1)
    d = np.where((owners >= 0) & (owners != skip), distances, np.iinfo(np.int32).max).astype(np.int64)
    order = np.argsort(d, axis=1, kind="stable")
    d = np.take_along_axis(d, order, axis=1)
    owners = np.take_along_axis(owners, order, axis=1)
    best = owners[:, 0]
    rival = np.where(owners[:, 1] != best, d[:, 1], np.where(owners[:, 2] != best, d[:, 2], np.iinfo(np.int32).max))
    votes = best[(d[:, 0] <= MAX_DISTANCE * stored.bits) & (d[:, 0] < RATIO * rival)]
    counts = Counter(votes.tolist())
    return [img for img, n in counts.most_common(CANDIDATES) if n >= MIN_VOTES]


@dataclasses.dataclass(frozen=True)
class Verified:
    image: int
    inliers: int
    scale: float = 0.0
    rotation: float = 0.0  # degrees
    spread: float = 0.0  # inliers' bounding box over the query's area
    overlap: float = 0.0  # share of the stored image the query's frame covers, through the transform
    stored_in: int = 0  # stored keypoints that the transform puts inside the query's frame
    matrix: tuple[float, ...] = ()  # query -> stored work pixels, 2 x 3 row-major
    aligned: int | None = None  # PDQ distance of a stored centred box to the query aligned on it
    aligned_share: float = 0.0  # that box's share of each side

    def plausible(self) -> bool:
        return (SCALE_RANGE[0] <= self.scale <= SCALE_RANGE[1] and abs(self.rotation) <= MAX_ROTATION
                and self.spread >= MIN_SPREAD)

    def density(self) -> float:
        """Inliers over the stored keypoints the query's frame covers: a crop shows most of what
        it covers again; a drawing sharing only a border or a head with another does not."""
        return self.inliers / max(1, self.stored_in)


_MATCHER = cv2.BFMatcher(cv2.NORM_HAMMING)


def verify(query: Features, stored: Features, image: int) -> Verified:
    none = Verified(image, 0)
    if len(query.descriptors) < 2 or len(stored.descriptors) < 2:
        return none
    pairs = _MATCHER.knnMatch(query.descriptors, stored.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    # one query keypoint per stored keypoint (the nearest): many query points on one stored
    # point let RANSAC fit a transform that shrinks the query to a dot, all "inliers"
    nearest: dict[int, Any] = {}
    for m in good:
        if m.trainIdx not in nearest or m.distance < nearest[m.trainIdx].distance:
            nearest[m.trainIdx] = m
    good = list(nearest.values())
    if len(good) < 4:
        return none
    src = query.points[[m.queryIdx for m in good]]
    dst = stored.points[[m.trainIdx for m in good]]
    matrix, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION,
                                               maxIters=2000, confidence=0.995)
    if matrix is None or mask is None:
        return none
    inlying = mask.ravel().astype(bool)
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    rotation = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))
    pts = src[inlying]
    box = (np.ptp(pts[:, 0]) * np.ptp(pts[:, 1])) if len(pts) else 0.0
    qw, qh = query.size
    sw, sh = stored.size
    # the query's frame in the stored image (a similarity keeps it a rotated rectangle; its
    # bounding box, clipped to the stored frame, is near enough for the small rotations allowed)
    corners = np.array([[0, 0, 1], [qw, 0, 1], [0, qh, 1], [qw, qh, 1]], np.float64) @ matrix.T
    x0, y0 = np.clip(corners.min(axis=0), 0, (sw, sh))
    x1, y1 = np.clip(corners.max(axis=0), 0, (sw, sh))
    overlap = float((x1 - x0) * (y1 - y0)) / (sw * sh)
    inverse = cv2.invertAffineTransform(matrix)
    back = np.c_[stored.points, np.ones(len(stored.points))] @ inverse.T
    inside = int(((back[:, 0] >= 0) & (back[:, 0] < qw) & (back[:, 1] >= 0) & (back[:, 1] < qh)).sum())
    return Verified(image, int(inlying.sum()), scale, rotation, float(box) / (qw * qh), overlap, inside,
                    tuple(float(v) for v in matrix.ravel()))


# Aligned PDQ: the transform says where the stored image's centred boxes fall in the query.
# Hash the query, warped onto the stored frame, over the largest of these centred boxes that
# lies inside the query, and compare it with the stored image's PDQ of the same box. 1.0 and
# 0.8 are PDQs hashdb stores already (whole image, centred crops); 0.6 would be new: a crop of
# 80 % of each side anywhere still holds the middle 60 %.
ALIGNED_SHARES = (1.0, 0.8, 0.6)
ALIGN_MIN_INLIERS = min(INLIERS)
_PDQ = PdqSignal()


def centred_box(width: int, height: int, share: float) -> tuple[int, int, int, int]:
    cut_x, cut_y = round(width * (1 - share) / 2), round(height * (1 - share) / 2)
    return cut_x, cut_y, width - cut_x, height - cut_y


def box_pdq(grey: np.ndarray, box: tuple[int, int, int, int]) -> Any:
    left, top, right, bottom = box
    region = np.ascontiguousarray(grey[top:bottom, left:right])
    return _PDQ.compute_array(np.repeat(region[:, :, None], 3, axis=2))


def pdq_distance(a: Any, b: Any) -> int:
    return int(bin(int(a.hex, 16) ^ int(b.hex, 16)).count("1"))


def align(result: Verified, query_grey: np.ndarray, stored_grey: np.ndarray,
          stored_pdqs: dict[float, Any] | None = None) -> Verified:
    """`result` with its aligned PDQ distance (None: no stored box inside the query)."""
    matrix = np.array(result.matrix, np.float64).reshape(2, 3)
    sh, sw = stored_grey.shape
    qh, qw = query_grey.shape
    inverse = cv2.invertAffineTransform(matrix)
    slack = 0.01 * max(qw, qh)
    for share in ALIGNED_SHARES:
        left, top, right, bottom = centred_box(sw, sh, share)
        corners = np.array([[left, top, 1], [right, top, 1], [left, bottom, 1], [right, bottom, 1]]) @ inverse.T
        if (corners.min(axis=0) >= -slack).all() and (corners[:, 0].max() <= qw + slack) and (corners[:, 1].max() <= qh + slack):
            stored = (stored_pdqs or {}).get(share) or box_pdq(stored_grey, (left, top, right, bottom))
            if (stored.quality or 0) < eval_matching.PDQ_QUALITY:
                continue  # a near-blank box says nothing; hashdb would not have stored it
            warped = cv2.warpAffine(query_grey, matrix, (sw, sh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            distance = pdq_distance(box_pdq(warped, (left, top, right, bottom)), stored)
            return dataclasses.replace(result, aligned=distance, aligned_share=share)
    return result


def look_up(stored: Stored, query: Features, skip: int = -1) -> list[Verified]:
    return [verify(query, stored.features[i], i) for i in candidates(stored, query, skip)]


def truncate(f: Features, n: int) -> Features:
    return dataclasses.replace(f, points=f.points[:n], descriptors=f.descriptors[:n])


# ----------------------------------------------------------------------------- reporting

@dataclasses.dataclass(frozen=True)
class Gate:
    """An operating point: what a verified candidate needs to count as a match."""
    inliers: int
    geometry: bool = True  # scale, rotation and spread as a crop or re-framing gives them
    aligned: int | None = None  # at most this aligned-PDQ distance (see align); None: not asked

    def passes(self, r: Verified) -> bool:
        return (r.inliers >= self.inliers and (r.plausible() or not self.geometry)
                and (self.aligned is None or (r.aligned is not None and r.aligned <= self.aligned)))

    def label(self) -> str:
        parts = [f">= {self.inliers} inliers"]
        parts.append("geometry" if self.geometry else "no geometry rule")
        if self.aligned is not None:
            parts.append(f"aligned PDQ <= {self.aligned}")
        return ", ".join(parts)


GATES = (Gate(20, geometry=False), Gate(10), Gate(15), Gate(20), Gate(30),
         Gate(8, aligned=31), Gate(10, aligned=31), Gate(15, aligned=31), Gate(10, aligned=24),
         Gate(10, aligned=20), Gate(10, aligned=16))


def matched(results: list[Verified], gate: Gate) -> set[int]:
    return {r.image for r in results if gate.passes(r)}


def kind(key: str) -> str:
    return "photo" if key.startswith("photo:") else "drawing"


def report(prep: Prepared, results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per gate: recall per family, strength and kind (features alone, main, their union),
    false positives, wrong matches."""
    known_index = {key: i for i, key in enumerate(prep.known)}
    points = []
    for gate in GATES:
        rows: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0, 0]))
        wrong = 0
        for (key, family, strength, _), found, own_main in zip(prep.queries, results["queries"], prep.main_own):
            names = matched(found, gate)
            own = known_index[key] in names
            wrong += bool(names - {known_index[key]})
            spec = eval_edits.FAMILY[family]
            for label in ("all", kind(key), str(spec.strengths[strength])):
                cell = rows[family][label]
                cell[0] += 1
                cell[1] += own
                cell[2] += own_main
                cell[3] += own or own_main
        fps = [bool(matched(found, gate)) for found in results["negatives"]]
        main_fp = [bool(m) for m in prep.main_fp]
        examples = [f"{prep.negatives[i]} -> {prep.known[r.image]} ({r.inliers} inliers, aligned {r.aligned} "
                    f"at {r.aligned_share}, scale {r.scale:.2f})"
                    for i, found in enumerate(results["negatives"]) for r in found if gate.passes(r)]
        known_pairs = [f"{prep.known[i]} -> {prep.known[r.image]} ({r.inliers} inliers, aligned {r.aligned})"
                       for i, found in enumerate(results["known"]) for r in found if gate.passes(r)]
        points.append({
            "gate": gate.label(), "inliers": gate.inliers, "geometry": gate.geometry, "aligned": gate.aligned,
            "families": {f: {label: dict(zip(("queries", "features", "main", "union"), cell))
                             for label, cell in labels.items()} for f, labels in rows.items()},
            "false_positives": sum(fps), "main_false_positives": sum(main_fp),
            "union_false_positives": sum(a or b for a, b in zip(fps, main_fp)),
            "wrong_queries": wrong, "main_wrong_queries": sum(bool(o) for o in prep.main_other),
            "known_vs_known": len(known_pairs), "fp_examples": examples[:30], "known_pairs": known_pairs[:10],
        })
    return points


def print_point(point: dict[str, Any], negatives: int, known: int, queries: int) -> None:
    print(f"  {point['gate']}: false positives {point['false_positives']}/{negatives} (main "
          f"{point['main_false_positives']}, union {point['union_false_positives']}); wrong-match queries "
          f"{point['wrong_queries']}/{queries} (main {point['main_wrong_queries']}); known images verified "
          f"against another known image {point['known_vs_known']}/{known}")
    gain = 0.0
    for family, labels in point["families"].items():
        a = labels["all"]
        gain += (a["union"] - a["main"]) / a["queries"]
        parts = [f"{label} {c['features'] / c['queries']:.2f}/{c['main'] / c['queries']:.2f}/"
                 f"{c['union'] / c['queries']:.2f} ({c['queries']})" for label, c in labels.items() if label != "all"]
        print(f"    {family:<13} features {a['features'] / a['queries']:.3f}  main {a['main'] / a['queries']:.3f}  "
              f"union {a['union'] / a['queries']:.3f}   features/main/union: {'; '.join(parts)}")
    print(f"    mean recall over all {len(eval_edits.FAMILIES)} families: +{gain / len(eval_edits.FAMILIES):.4f} "
          f"(union over main)")
    for example in point["fp_examples"][:4]:
        print(f"    false positive: {example}")
    for example in point["known_pairs"][:4]:
        print(f"    known -> other known: {example}")


# ----------------------------------------------------------------------------- costs

def stored_bytes(features: list[Features], stored: int) -> dict[str, float]:
    counts = [min(stored, len(f.descriptors)) for f in features]
    width = features[0].descriptors.shape[1] if features else 32
    mean = statistics.mean(counts)
    # descriptor bytes + 2 x 1 byte positions (a 256-level grid over the work copy's longer side)
    return {"keypoints_mean": mean, "bytes_mean": mean * (width + 2), "descriptor_bytes": width}


def time_megapixel(name: str, stored: Stored, sources: list[Image.Image], query_n: int,
                   stored_grey: Any) -> dict[str, float]:
    """CPU ms (one thread) per 1-megapixel JPEG query (an off-centre 85 % crop of a known image
    blown up to a megapixel): decode, features, candidate search, verification, aligned PDQ,
    each timed apart, best of 3 rounds. The stored PDQs the aligned check compares with are
    made before the clock starts, as a store would hold them."""
    payloads = []
    for image in sources:
        scale = (1_000_000 / (image.width * image.height)) ** 0.5
        big = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
        payloads.append(eval_edits.encode(eval_edits.crop(big, random.Random(0), (0.85, "off"))))
    stored_pdqs: dict[int, dict[float, Any]] = {}
    stored_greys: dict[int, np.ndarray] = {}
    best = {"decode": math.inf, "features": math.inf, "search": math.inf, "verify": math.inf, "align": math.inf}
    for round_ in range(4):  # the first round, untimed, makes the stored PDQs
        spent = dict.fromkeys(best, 0.0)
        for data in payloads:
            t0 = time.process_time()
            image = decode(data)
            t1 = time.process_time()
            grey = work_copy(image)
            feats = truncate(extract_grey(name, grey), query_n)
            t2 = time.process_time()
            found = candidates(stored, feats)
            t3 = time.process_time()
            verified = [verify(feats, stored.features[i], i) for i in found]
            t4 = time.process_time()
            for r in verified:
                if r.inliers >= ALIGN_MIN_INLIERS and r.plausible():
                    if round_ == 0:
                        sg = stored_grey(r.image)
                        stored_pdqs[r.image] = {share: box_pdq(sg, centred_box(sg.shape[1], sg.shape[0], share))
                                                for share in ALIGNED_SHARES}
                        stored_greys[r.image] = sg
                    align(r, grey, stored_greys[r.image], stored_pdqs[r.image])
            t5 = time.process_time()
            for part, seconds in zip(best, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                spent[part] += seconds
        if round_:
            for part in best:
                best[part] = min(best[part], 1000 * spent[part] / len(payloads))
    best["total"] = sum(best.values())
    return best


def time_search(stored: Stored, queries: list[Features], nprobe: int) -> float:
    stored.index.nprobe = nprobe
    start = time.process_time()
    for q in queries:
        candidates(stored, q)
    return 1000 * (time.process_time() - start) / len(queries)


# ----------------------------------------------------------------------------- main

def cached(path: Path | None, make: Any) -> Any:
    if path is not None and path.exists():
        with path.open("rb") as f:
            return pickle.load(f)
    value = make()
    if path is not None:
        with path.open("wb") as f:
            pickle.dump(value, f)
    return value


def features_of(name: str, prep: Prepared, jobs: int, progress: bool) -> dict[str, list[Features]]:
    work = ([(name, "known", (k,)) for k in prep.known] + [(name, "negative", (k,)) for k in prep.negatives]
            + [(name, "query", q) for q in prep.queries])
    out: list[Features] = []
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs) as pool:
            for i, f in enumerate(pool.map(_features_job, work, chunksize=16)):
                out.append(f)
                if progress and i % 1000 == 999:
                    print(f"  {name}: {i + 1}/{len(work)} images", file=sys.stderr)
    else:
        out = [_features_job(job) for job in work]
    k, n = len(prep.known), len(prep.negatives)
    return {"known": out[:k], "negatives": out[k:k + n], "queries": out[k + n:]}


@functools.lru_cache(maxsize=1000)
def source_grey(key: str) -> np.ndarray:
    return work_copy(source(key))


def look_up_all(stored: Stored, feats: list[Features], grey_of: Any, stored_grey: Any,
                skip: bool = False) -> list[list[Verified]]:
    """Candidates and verification for each query; the aligned PDQ for those that pass the
    loosest gate (the query's pixels, `grey_of(i)`, made again only for them)."""
    out = []
    for i, f in enumerate(feats):
        found = look_up(stored, f, i if skip else -1)
        if any(r.inliers >= ALIGN_MIN_INLIERS and r.plausible() for r in found):
            grey = grey_of(i)
            found = [align(r, grey, stored_grey(r.image)) if r.inliers >= ALIGN_MIN_INLIERS and r.plausible() else r
                     for r in found]
        out.append(found)
    return out


def scale_search(prep: Prepared, feats: dict[str, list[Features]], stored_n: int, query_n: int,
                 nprobe: int) -> list[dict[str, Any]]:
    """Candidate search as the index grows: the known images alone, then with every negative's
    descriptors added as distractor images (7x the descriptors), lists kept near LIST_LENGTH
    descriptors. Per size: CPU ms per query (cached features) and the share of crop queries
    whose own image is still among the candidates."""
    crops = [i for i, q in enumerate(prep.queries) if q[1].startswith("crop")]
    queries = [truncate(feats["queries"][i], query_n) for i in crops]
    own = [prep.known.index(prep.queries[i][0]) for i in crops]
    out = []
    for extra in (0, len(feats["negatives"]) // 4, len(feats["negatives"])):
        images = feats["known"] + feats["negatives"][:extra]
        descriptors = sum(min(stored_n, len(f.descriptors)) for f in images)
        nlist = 1 << max(4, round(math.log2(descriptors / LIST_LENGTH)))
        stored = build_index(images, stored_n, nlist, nprobe)
        for probes in (1, 4, nprobe):
            stored.index.nprobe = probes
            start = time.process_time()
            found = [candidates(stored, q) for q in queries]
            ms = 1000 * (time.process_time() - start) / len(queries)
            hit = sum(o in f for o, f in zip(own, found)) / len(queries)
            out.append({"images": len(images), "descriptors": descriptors, "nlist": nlist, "nprobe": probes,
                        "ms_per_query": ms, "own_in_candidates": hit})
    return out


LIST_LENGTH = 400  # descriptors per IVF list in scale_search


PHOTO_CROPS = ("crop_95_90", "crop_85", "crop_80")


def photo_supplement(name: str, prep: Prepared, known: list[Features], stored_n: int, query_n: int,
                     nlist: int, nprobe: int, cache: Path | None) -> dict[str, Any]:
    """The full run holds few photographs among its known images; here every photograph of the
    pool is known (the negatives' ones added to the index) and cropped at each crop strength.
    Main's answers are not measured for these."""
    photos = [k for k in prep.known + prep.negatives if kind(k) == "photo"]
    extra = [k for k in photos if k not in set(prep.known)]
    jobs = [(k, f, i, f"{prep.seed}/photo/{f}/{i}/{k}") for k in photos for f in PHOTO_CROPS
            for i in range(len(eval_edits.FAMILY[f].strengths))]

    def make() -> dict[str, list[Features]]:
        return {"extra": [extract(name, source(k)) for k in extra],
                "queries": [extract(name, query_image(*job)) for job in jobs]}
    feats = cached(cache / f"photos-{name}-{prep.size}-{prep.seed}.pkl" if cache else None, make)
    keys = prep.known + extra
    stored = build_index(known + feats["extra"], stored_n, nlist, nprobe)
    results = look_up_all(stored, [truncate(f, query_n) for f in feats["queries"]],
                          lambda i: work_copy(query_image(*jobs[i])), lambda i: source_grey(keys[i]))
    index_of = {k: i for i, k in enumerate(keys)}
    out: dict[str, Any] = {"photos": len(photos), "queries": len(jobs), "points": []}
    for gate in GATES:
        cells: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for (key, family, strength, _), found in zip(jobs, results):
            names = matched(found, gate)
            cell = cells[str(eval_edits.FAMILY[family].strengths[strength])]
            cell[0] += 1
            cell[1] += index_of[key] in names
            cell[2] += bool(names - {index_of[key]})
        out["points"].append({"gate": gate.label(), "by_strength": {k: {"queries": v[0], "recall": v[1] / v[0],
                                                                       "wrong": v[2]} for k, v in cells.items()}})
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--size", choices=("full", "medium", "small", "tiny"), default="full")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--detectors", default="orb,akaze")
    parser.add_argument("--stored", default="500", help="comma-separated: keypoints stored per known image")
    parser.add_argument("--query", type=int, default=1000, help="keypoints extracted from a query")
    parser.add_argument("--nlist", type=int, default=1024, help="IVF lists (0: a flat index)")
    parser.add_argument("--nprobe", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=2, help="processes for hashing and features")
    parser.add_argument("--no-photos", action="store_true", help="skip the photograph supplement")
    parser.add_argument("--cache", help="directory for the pool, main's answers and features (reused)")
    parser.add_argument("--json", dest="json_out")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    progress = not args.quiet
    cv2.setNumThreads(1)
    faiss.omp_set_num_threads(1)
    cache = Path(args.cache) if args.cache else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    families = args.families.split(",")
    tag = f"{args.size}-{args.seed}-{'+'.join(families)}"
    prep: Prepared = cached(cache / f"prep-{tag}.pkl" if cache else None,
                            lambda: prepare(args.seed, args.size, families, args.jobs, progress))
    summary: dict[str, Any] = {"seed": args.seed, "size": args.size, "known": len(prep.known),
                               "negatives": len(prep.negatives), "main_commit": prep.commit,
                               "known_kinds": dict(Counter(map(kind, prep.known))),
                               "query_kinds": dict(Counter(kind(q[0]) for q in prep.queries)),
                               "negative_kinds": dict(Counter(map(kind, prep.negatives))), "runs": []}
    print(f"pool (eval_matching's, {args.size}, seed {args.seed}; main's answers from hashdb at {prep.commit}): "
          f"known {summary['known_kinds']}, queries {summary['query_kinds']}, negatives {summary['negative_kinds']}")

    def negative_grey(i: int) -> np.ndarray:
        return work_copy(decode(eval_edits.encode(source(prep.negatives[i]))))

    for name in args.detectors.split(","):
        feats = cached(cache / f"features-{name}-{tag}.pkl" if cache else None,
                       lambda: features_of(name, prep, args.jobs, progress))
        queries = [truncate(f, args.query) for f in feats["queries"]]
        negatives = [truncate(f, args.query) for f in feats["negatives"]]
        for stored_n in (int(s) for s in args.stored.split(",")):
            start = time.process_time()
            stored = build_index(feats["known"], stored_n, args.nlist, args.nprobe)
            build_ms = 1000 * (time.process_time() - start)
            if progress:
                print(f"  {name}, {stored_n} stored: looking up", file=sys.stderr)
            t0 = time.process_time()
            stored_grey = lambda i: source_grey(prep.known[i])  # noqa: E731
            results = {
                "queries": look_up_all(stored, queries, lambda i: work_copy(query_image(*prep.queries[i])), stored_grey),
                "negatives": look_up_all(stored, negatives, negative_grey, stored_grey),
                "known": look_up_all(stored, [truncate(f, args.query) for f in feats["known"]],
                                     lambda i: source_grey(prep.known[i]), stored_grey, skip=True)}
            if cache:  # every verification, for reading the misses and false positives again
                with (cache / f"results-{name}-{stored_n}-{tag}.pkl").open("wb") as out:
                    pickle.dump(results, out)
            lookups = len(queries) + len(negatives) + len(feats["known"])
            run: dict[str, Any] = {"detector": name, "stored": stored_n, "query": args.query, "nlist": args.nlist,
                                   "nprobe": args.nprobe, "points": report(prep, results)}
            run["bytes"] = stored_bytes(feats["known"], stored_n)
            print(f"\n{name}, {stored_n} keypoints stored, {args.query} a query:")
            for point in run["points"]:
                print_point(point, len(prep.negatives), len(prep.known), len(prep.queries))
            sys.stdout.flush()
            run["ms_per_lookup_cached_features"] = 1000 * (time.process_time() - t0) / lookups
            run["index_build_ms"] = build_ms
            run["descriptors"] = int(stored.index.ntotal)
            run["candidates_mean"] = statistics.mean(len(r) for r in results["queries"] + results["negatives"])
            if progress:
                print(f"  {name}, {stored_n} stored: timing, index sizes, photographs", file=sys.stderr)
            sources = [source(k) for k in prep.known[:30]]
            run["timing_1mp"] = time_megapixel(name, stored, sources, args.query, stored_grey)
            run["search_ms_by_nprobe"] = {p: time_search(stored, queries[:200], p) for p in (1, 4, 16, 64)}
            stored.index.nprobe = args.nprobe
            run["scale"] = scale_search(prep, feats, stored_n, args.query, args.nprobe)
            if not args.no_photos:
                run["photos"] = photo_supplement(name, prep, feats["known"], stored_n, args.query, args.nlist,
                                                 args.nprobe, cache)
            summary["runs"].append(run)
            print_run(run, prep)
            if args.json_out:
                Path(args.json_out).write_text(json.dumps(summary, indent=1, default=str))
    return 0


def print_run(run: dict[str, Any], prep: Prepared) -> None:
    b, t = run["bytes"], run["timing_1mp"]
    print(f"\n{run['detector']}: {run['stored']} keypoints stored ({b['keypoints_mean']:.0f} on average, "
          f"{b['bytes_mean']:.0f} bytes an image with 1-byte positions), {run['query']} a query; "
          f"{run['descriptors']} descriptors in an IVF of {run['nlist']} lists, nprobe {run['nprobe']}; "
          f"{run['candidates_mean']:.2f} candidates verified a lookup")
    print(f"  1-megapixel query, CPU ms (one thread): " + ", ".join(f"{k} {v:.1f}" for k, v in t.items())
          + "; candidate search ms by nprobe (cached features): "
          + ", ".join(f"{p}: {v:.1f}" for p, v in run["search_ms_by_nprobe"].items()))
    for row in run["scale"]:
        print(f"  index of {row['images']} images, {row['descriptors']} descriptors, {row['nlist']} lists, nprobe "
              f"{row['nprobe']}: {row['ms_per_query']:.1f} ms CPU a query's candidate search, own image among the "
              f"candidates for {row['own_in_candidates']:.3f} of crop queries")
    if "photos" in run:
        ph = run["photos"]
        print(f"  photographs: every one of the pool's {ph['photos']} known, {ph['queries']} crops "
              "(recall per strength, wrong matches)")
        for point in ph["points"]:
            print(f"    {point['gate']}: " + "; ".join(f"{k} {v['recall']:.2f}" + (f" ({v['wrong']} wrong)" if v["wrong"] else "")
                                                 for k, v in point["by_strength"].items()))


if __name__ == "__main__":
    sys.exit(main())
