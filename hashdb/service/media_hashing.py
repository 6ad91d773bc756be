"""Hashing one image or video: every wanted signal, as a pure function of the bytes and settings.

The service's MediaMixin and the process pool (media_pool) both call these; nothing here
touches a store or an index, so a worker process needs only the settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path


from hashdb.config import Settings
from hashdb.errors import FeaturelessVideo
from hashdb.hashing import media as media_io
from hashdb.hashing.pdq import PdqSignal
from hashdb.hashing.registry import TMK_SIGNAL, DEFAULT_SIGNALS, bytes_signals, get_signal, image_signals
from hashdb.types import DerivedHash, HashValue, MediaHashes


def hash_media_file(settings: Settings, path: Path, signals: Sequence[str] | None = None,
                    dihedral: bool = False) -> MediaHashes:
    data = media_io.read_file(path, settings.limits)
    return hash_media(settings, data, str(path), signals, path, dihedral)


def _tmk(settings: Settings, data: bytes, path: Path | None,
         signals: Sequence[str] | None) -> tuple[bytes | None, tuple[str, ...]]:
    """A video's TMK (after hash_video accepted the file under the limits), and notes: when
    asked for by name (ToolMissing if it cannot be computed here), or by default when it can be."""
    from hashdb.hashing import tmk_video

    asked = bool(signals and TMK_SIGNAL in signals)
    if not asked:
        if signals or not settings.tmk_hashes or tmk_video.unavailable() is not None:
            return None, ()
    try:
        return (tmk_video.hash_tmk(path) if path is not None else tmk_video.hash_tmk_bytes(data)), ()
    except FeaturelessVideo:
        # A flat video (all black, one colour) has no TMK, yet still its md5 and sha256 and its
        # frames (flagged by quality): those are the answer. The default hashes go on without a
        # TMK; asked for by name (`--signals md5,tmk`), its absence is said in a note, not an
        # error that would withhold the md5 asked for beside it.
        return None, (("tmk left out: a flat video (its TMK feature is all zero) has nothing to match",)
                      if asked else ())


def hash_media(settings: Settings, data: bytes, name: str, signals: Sequence[str] | None = None,
               path: Path | None = None, dihedral: bool = False) -> MediaHashes:
    """Every wanted signal of one image or video; a pure function of the bytes and settings."""
    wanted = tuple(signals) if signals else DEFAULT_SIGNALS
    for signal in wanted:
        if signal != TMK_SIGNAL:
            get_signal(signal)
    exact = tuple(s.compute_bytes(data) for s in bytes_signals() if s.name in wanted)
    kind, fmt = media_io.sniff(data)
    # Only the file's digests asked for (`--signals md5`): no pixel is decoded, so an image
    # over the decode limits still gets them, and a video's frames are not sampled.
    if not any(s.name in wanted for s in image_signals()) and TMK_SIGNAL not in wanted:
        return MediaHashes(name, kind, exact)
    if kind == "video":
        from hashdb.hashing import video
        from hashdb.hashing.media_headers import check_video_whole, video_seconds

        check_video_whole(data, fmt)
        seconds = video_seconds(data, fmt)

        sampling = video.VideoSampling.from_settings(settings)
        if dihedral:  # a lookup: each sample spans one stored sampling interval
            sampling = dataclasses.replace(sampling, group_seconds=1 / settings.video_stored_fps,
                                           cuts_join_sample=True)
        else:  # hashing to store: denser, see Settings.video_stored_fps; a video too long for
            # max_video_frames at that rate at the highest that fits, never below the query rate
            sampling = dataclasses.replace(sampling, fps=settings.video_stored_fps,
                                           min_fps=min(settings.video_fps, settings.video_stored_fps))
        if path is not None:
            frames = video.hash_video(path, settings.limits, sampling, seconds)
        else:
            frames = video.hash_video_bytes(data, settings.limits, sampling, seconds)
        tmk, notes = _tmk(settings, data, path, signals)
        return MediaHashes(name, "video", exact, frames=frames, tmk=tmk, notes=notes)
    decoded = media_io.decode_image(data, settings.limits)
    # One array for every signal; with dihedral, the first of the 8 PDQs is the primary.
    rgb = media_io.rgb_pixels(decoded.rgb)
    pdq = PdqSignal()
    rotations: tuple[HashValue, ...] = ()
    if dihedral and "pdq" in wanted:
        # Only ever queried (never stored or printed): all 8 from one filter of the image, a
        # few bits at most from filtering each turned copy, for a quarter of the cost.
        rotations = pdq.dihedral_one_filter_array(rgb)
    perceptual = tuple(
        rotations[0] if s.name == "pdq" and rotations else s.compute_rgb(decoded.rgb, rgb)
        for s in image_signals() if s.name in wanted
    )
    variants: tuple[HashValue, ...] = ()
    derived: tuple[DerivedHash, ...] = ()
    stored: bytes | None = None
    probe: object | None = None
    if "pdq" in wanted:
        # Flattened (transparency) and upright (EXIF) copies: what re-uploads tend to look like.
        primary = next((v.hex for v in perceptual if v.signal == "pdq"), None)
        computed = [pdq.compute(image) for _, image in decoded.variants()]
        variants = tuple(v for n, v in enumerate(computed)
                         if v.hex != primary and v.hex not in {w.hex for w in computed[:n]})
        if settings.derived_hashes:
            from hashdb.hashing import deskew, kernel, regions
            from hashdb.hashing.derived import Detail, derived_pdqs, work_copy
            from hashdb.hashing.enlarged import enlarged_pdqs
            from hashdb.hashing.masked import masked_pdqs

            # From the picture as a viewer sees it, reduced once for every kind of derived
            # hash (no full-size array is made for it); its Detail, its PDQ luma, and its
            # smaller copy for the deskew angle and the corner masks (each kind checks the
            # copy's size), made once for the kinds that read them.
            work = work_copy(decoded.shown, rgb if decoded.shown is decoded.rgb else None)
            detail = Detail(work)
            luma = kernel.Luma(work)
            small = regions.reduced(work, deskew.WORK_SIDE)
            derived = derived_pdqs(work, settings.pdq_min_quality, lookup=dihedral, detail=detail, small=small,
                                   luma=luma)
            derived += masked_pdqs(work, settings.pdq_min_quality, small)
            derived += enlarged_pdqs(work, settings.pdq_min_quality, detail)
            if not dihedral:  # hashing to store (as for videos above): centred crops, never queried
                from hashdb.hashing.crops import crop_pdqs

                derived += crop_pdqs(work, settings.pdq_min_quality, detail, luma)
            else:  # a lookup: windows for an off-centre crop, matched with the stored centred crops
                from hashdb.hashing.crops import window_pdqs

                derived += window_pdqs(small, settings.pdq_min_quality, luma if small is work else None)
            if settings.keypoints:
                # Imported here: it loads OpenCV, which nothing else hashing an image needs.
                from hashdb.hashing import keypoints

                # Stored beside the PDQ when hashing to store; a lookup's probe stays in memory.
                if dihedral:
                    probe = keypoints.probe(work)
                else:
                    stored = keypoints.stored_keypoints(work, settings.pdq_min_quality)
    return MediaHashes(name, "image", exact + perceptual, variants=variants, dihedral=rotations[1:],
                       derived=derived, keypoints=stored, probe=probe)
