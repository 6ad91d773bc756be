"""TMK+PDQF cost: hashing a video (tmkpy + ffmpeg) against our vPDQ sampling of the same video,
and matching (level 1 over the cosine index, level 2 per candidate) against references.

    .venv/bin/python scripts/bench_tmk.py [--repeat 3] [--stored 10000] [VIDEO ...]

Hashing, per video, on one core (the process and the ffmpeg it starts pinned to it), the runs
alternating, best of --repeat: `hash_tmk` against `hash_video` as a submission samples (10 fps
plus cuts) and as a lookup does (1 fps). Matching: level 1 of one query over --stored random
unit vectors in hashdb.index.cosine against FAISS's IndexFlatIP range search (the reference),
and one level-2 score in numpy against tmkpy's C++ on the same pair.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import faiss
import numpy as np

from hashdb.config import Settings
from hashdb.hashing import tmk
from hashdb.hashing.tmk_video import hash_tmk
from hashdb.hashing.video import VideoSampling, hash_video
from hashdb.index.cosine import CosineIndex

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VIDEOS = sorted((ROOT.parent / "shared" / "vectors" / "vpdq" / "videos").glob("*.mp4")) + [
    ROOT / "fixtures" / "media" / "clip.mp4"
]


def best_of(repeat: int, runs: dict[str, Callable[[], object]]) -> dict[str, float]:
    best = {name: float("inf") for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="*", type=Path, default=DEFAULT_VIDEOS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stored", type=int, default=10_000)
    args = parser.parse_args()

    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    settings = Settings()
    stored = VideoSampling(fps=settings.video_stored_fps, decode_threads=1)
    query = dataclasses.replace(VideoSampling(decode_threads=1), group_seconds=1 / settings.video_stored_fps,
                                cuts_join_sample=True)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, pinned to 1; "
          f"load {os.getloadavg()[0]:.1f}; best of {args.repeat}")
    header = ("video", "seconds", "tmk s", "vPDQ stored s", "vPDQ lookup s", "tmk / stored", "tmk / lookup",
              "tmk s per video minute")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    features: list[tmk.TmkFeatures] = []
    for path in args.videos:
        capture = cv2.VideoCapture(str(path))
        seconds = capture.get(cv2.CAP_PROP_FRAME_COUNT) / max(capture.get(cv2.CAP_PROP_FPS), 1e-9)
        capture.release()
        times = best_of(args.repeat, {
            "tmk": lambda: hash_tmk(path),
            "stored": lambda: hash_video(path, sampling=stored),
            "lookup": lambda: hash_video(path, sampling=query),
        })
        features.append(tmk.parse_tmk(hash_tmk(path)))
        print(f"| {path.stem} | {seconds:.1f} | {times['tmk']:.3f} | {times['stored']:.3f} | {times['lookup']:.3f} | "
              f"{times['tmk'] / times['stored']:.2f} | {times['tmk'] / times['lookup']:.2f} | "
              f"{times['tmk'] / seconds * 60:.2f} |")

    rng = np.random.default_rng(13)
    vectors = rng.standard_normal((args.stored, tmk.DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = CosineIndex(tmk.DIMENSION)
    index.add(list(range(args.stored)), vectors)
    flat = faiss.IndexIDMap(faiss.IndexFlatIP(tmk.DIMENSION))
    flat.add_with_ids(vectors, np.arange(args.stored, dtype=np.int64))
    probe = vectors[:1]
    index.search(probe, tmk.LEVEL1_THRESHOLD)  # joins the added blocks once, as the first lookup does
    level1 = best_of(args.repeat * 10, {
        "index": lambda: index.search(probe, tmk.LEVEL1_THRESHOLD),
        "faiss": lambda: flat.range_search(probe, tmk.LEVEL1_THRESHOLD),
    })
    print(f"\nlevel 1, one query over {args.stored} stored: cosine index {level1['index'] * 1000:.2f} ms, "
          f"FAISS IndexFlatIP range search {level1['faiss'] * 1000:.2f} ms (faiss threads: {faiss.omp_get_max_threads()})")
    a, b = features[0], features[-1]
    try:
        import tmkpy

        ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
        ta, tb = tmkpy.hashVideo(str(args.videos[0]), ffmpeg), tmkpy.hashVideo(str(args.videos[-1]), ffmpeg)
        level2 = best_of(args.repeat * 10, {
            "ours": lambda: tmk.level2(a, b),
            "tmkpy": lambda: tmkpy.TMKFeatureVectors.computeLevel2Score(ta, tb),
        })
        print(f"level 2, one pair: numpy {level2['ours'] * 1000:.2f} ms, tmkpy (C++) {level2['tmkpy'] * 1000:.2f} ms")
    except ImportError:
        print("level 2: tmkpy is not installed, no reference")


if __name__ == "__main__":
    main()
