"""Video hashing: OpenCV decoding under the safety caps, frame sampling, PDQ per sampled frame.
The match rule over the frame hashes is in vpdq_rule.py.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from hashdb.config import MediaLimits, Settings
from hashdb.errors import InvalidInput, MediaTooLarge, UnsupportedMedia
from hashdb.hashing import regions
from hashdb.hashing.media import media_type
from hashdb.hashing.pdq import PdqSignal
from hashdb.types import FrameHash, HashValue

# Side of the grayscale thumbnail compared for scene changes: enough to see a cut, small
# enough that comparing costs nothing next to decoding.
_THUMB = 32
# Consumer cameras top out at 240 fps. More decoded frames than the duration cap allows at that
# rate means the timestamps lie (a decode bomb), whatever the container claims.
_MAX_PLAUSIBLE_FPS = 240.0
# How far short of the container's duration the last decoded frame may end. Measured: whole
# files (the fixtures, VP9/H.264/MJPEG in WebM, MKV, AVI, MOV, variable frame rate, a copy
# trimmed by edit list) end within one frame interval of it; OpenCV stops at the first packet
# it cannot decode, so a damaged file ends seconds early (the clip with 200 bytes flipped: 1
# frame of 88; its tail damaged: 4.8 s of 5.9 s).
_END_SLACK_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class VideoSampling:
    """Which frames get a PDQ: a regular rate plus the first probe after a scene change."""

    # Regular samples a second. The vPDQ rule counts the query's frames, so a sparse query
    # against a dense stored video matches; both at 1 fps can miss a trimmed copy of fast
    # footage (the chair vectors change by 100+ bits in 0.5 s; 10 fps on the stored side finds it).
    fps: float = 1.0
    # How often a thumbnail is taken to look for cuts; 0 turns scene sampling off. Each probe
    # costs a colour conversion that grab() skips, so probes stay well under the frame rate.
    scene_probe_fps: float = 5.0
    # Mean absolute difference (0..255) between the 32x32 gray thumbnails of consecutive probes
    # (0.2 s apart by default). Measured: continuous motion in the reference videos, even the
    # fast hand-held camera of the chair videos, peaks at 25 (median 1 to 19); the cuts in the
    # fixture clips give 40 to 53, the pattern video's change 87 to 128. 32 sits between.
    scene_threshold: float = 32.0
    # FFmpeg decoding threads; 0 leaves FFmpeg's choice (one per core).
    decode_threads: int = 0
    # Frames with letterbox/pillarbox bars (regions.bars) also get the PDQ of the picture
    # inside them, as a second frame hash at the same time: an SD re-encode with bars then
    # matches its HD original. The first hash stays the whole frame's, as Meta's vPDQ has it.
    trim_bars: bool = False
    # Query side: each regular sample also hashes the frames decoded in the next this many
    # seconds, as hashes of the same sampled frame (same timestamp). Set to the stored side's
    # sampling interval, one of them is a frame the stored side hashed too, however the copy
    # was shifted or cut (Settings.video_stored_fps). 0: a sample is one frame.
    group_seconds: float = 0.0
    # Query side: a scene-change frame is another view of the latest regular sample (its
    # timestamp), not a sample of its own. Meta's vPDQ (pytx, HMA) samples one frame a second
    # and nothing at cuts, so a video they hashed has no frame for the picture between a cut and
    # the next second: counted on their own, our cut frames fell under the 80 % query rule
    # against it (62 to 88 % on the fixtures). Joined, they can only help their sample match.
    cuts_join_sample: bool = False
    # Stored side: a video whose samples at `fps` would pass max_video_frames is sampled at the
    # highest rate that fits, down to this one (the query rate: a stored video sparser than its
    # queries would no longer line up with them); 0 keeps `fps` and refuses such a video.
    # Matching needs no record of the rate: it counts a stored video by its frames' timestamps.
    min_fps: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise InvalidInput(f"video sampling rate must be a positive number per second, got {self.fps}")
        if not (math.isfinite(self.scene_probe_fps) and self.scene_probe_fps >= 0):
            raise InvalidInput(f"scene probe rate must be >= 0 per second, got {self.scene_probe_fps}")
        if not (math.isfinite(self.group_seconds) and 0 <= self.group_seconds <= 10):
            raise InvalidInput(f"frame group must be from 0 to 10 seconds, got {self.group_seconds}")
        if not (math.isfinite(self.scene_threshold) and 0 <= self.scene_threshold <= 255):
            raise InvalidInput(f"scene threshold must be from 0 to 255, got {self.scene_threshold}")
        if not (math.isfinite(self.min_fps) and 0 <= self.min_fps <= self.fps):
            raise InvalidInput(f"lowest sampling rate must be from 0 to {self.fps:g} per second, got {self.min_fps}")
        if self.decode_threads < 0:
            raise InvalidInput(f"decode threads must be >= 0, got {self.decode_threads}")

    @classmethod
    def from_settings(cls, settings: Settings) -> VideoSampling:
        return cls(fps=settings.video_fps, trim_bars=settings.derived_hashes)


def pdq_of_rgb(rgb: np.ndarray) -> HashValue:
    """PDQ of one uint8 HxWx3 RGB frame (the one place video hashing calls PDQ)."""
    return PdqSignal().compute_array(rgb)


def hash_video(
    path: str | os.PathLike[str],
    limits: MediaLimits | None = None,
    sampling: VideoSampling | None = None,
    seconds: float | None = None,
) -> tuple[FrameHash, ...]:
    """PDQ of the sampled frames of the video at `path`, consecutive duplicates collapsed.
    `seconds`: how long the container says the video plays (media_headers.video_seconds),
    else its frame count over its frame rate; frames that stop well short of it are a damaged
    file, refused rather than hashed in part."""
    limits = limits or MediaLimits()
    sampling = sampling or VideoSampling()
    path = Path(path)
    _check_file(path, limits)
    # FFmpeg only, never OpenCV's image-sequence reader, which treats "%d" in a name as a pattern.
    # OpenCV applies the container's rotation, so frames are hashed upright as viewers see them.
    params = [cv2.CAP_PROP_N_THREADS, sampling.decode_threads] if sampling.decode_threads else []
    _quiet_decoder()
    try:
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
    except cv2.error as exc:
        raise UnsupportedMedia(f"{path.name}: cannot open as a video ({exc.err})") from exc
    try:
        if not capture.isOpened():
            raise UnsupportedMedia(
                f"{path.name}: cannot open as a video (damaged, truncated or no video track)"
            )
        sampling = _check_metadata(capture, path.name, limits, sampling, seconds)
        try:
            return _sample(capture, path.name, limits, sampling, seconds)
        except _OverCap as over:
            # More hashes than the duration foretold (bars hashed twice, scene cuts, or a
            # container that understates its length): once more, at the rate that projection fits.
            capture.release()
            capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
            if not capture.isOpened():
                raise UnsupportedMedia(f"{path.name}: cannot open as a video a second time") from over
            return _sample(capture, path.name, limits, dataclasses.replace(over.refit, min_fps=over.refit.fps),
                           seconds)
    except cv2.error as exc:
        raise UnsupportedMedia(f"{path.name}: cannot decode the video ({exc.err})") from exc
    finally:
        capture.release()


@functools.cache
def _quiet_decoder() -> None:
    """FFmpeg ("moov atom not found") and OpenCV ("[ WARN:0] global cap.cpp ...") print their
    own lines to stderr about a damaged video, beside the one-line error raised here. Both are
    silenced once, before the first capture (FFmpeg reads its level when OpenCV first starts
    it), unless the user set their levels in the environment."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def hash_video_bytes(
    data: bytes, limits: MediaLimits | None = None, sampling: VideoSampling | None = None,
    seconds: float | None = None,
) -> tuple[FrameHash, ...]:
    """`hash_video` for bytes in memory: OpenCV reads only files, so they go to a temp file."""
    limits = limits or MediaLimits()
    if len(data) > limits.max_bytes:
        raise MediaTooLarge(f"video of {len(data)} bytes is over the {limits.max_bytes}-byte limit")
    fd, name = tempfile.mkstemp(prefix="hashdb-video-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return hash_video(name, limits, sampling, seconds)
    finally:
        os.unlink(name)


def _check_file(path: Path, limits: MediaLimits) -> None:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise UnsupportedMedia(f"{path.name}: not a regular file")  # a FIFO would never end
        with path.open("rb") as f:
            head = f.read(32)
    except OSError as exc:
        raise UnsupportedMedia(f"{path.name}: cannot read ({exc.strerror or exc})") from exc
    if info.st_size > limits.max_bytes:
        raise MediaTooLarge(f"{path.name}: {info.st_size} bytes is over the {limits.max_bytes}-byte limit")
    if info.st_size == 0:
        raise UnsupportedMedia(f"{path.name}: empty file (0 bytes), not a video")
    # FFmpeg would open far more than videos: an image as a one-frame video, and a text
    # playlist (HLS, concat) that makes it read other files or URLs. Only real containers pass.
    try:
        kind = media_type(head)
    except UnsupportedMedia as exc:
        raise UnsupportedMedia(f"{path.name}: {exc}") from exc
    if kind != "video":
        raise UnsupportedMedia(f"{path.name}: this is an image, not a video")


class _OverCap(Exception):
    """A fitted sampling produced more hashes than max_video_frames: `refit` should not."""

    def __init__(self, refit: VideoSampling) -> None:
        super().__init__(refit.fps)
        self.refit = refit


# Share of max_video_frames a fitted rate plans for regular samples: the rest is for scene cuts
# and the grid's last tick, so a fitted video needs no second decode unless bars double it.
_FIT_SHARE = 0.95


def _fitted(sampling: VideoSampling, limits: MediaLimits, seconds: float, hashes_per_sample: float = 1.0
            ) -> VideoSampling:
    """`sampling` at the highest rate (not above its own, not below min_fps) whose regular
    samples over `seconds`, `hashes_per_sample` hashes each, fit max_video_frames."""
    if sampling.min_fps <= 0 or seconds <= 0 or seconds * sampling.fps * hashes_per_sample <= limits.max_video_frames:
        return sampling
    # Rounded down to 1/1000 fps: the rate stays readable in a log, and the grid still fits.
    rate = math.floor(1000 * _FIT_SHARE * limits.max_video_frames / (seconds * hashes_per_sample)) / 1000
    return dataclasses.replace(sampling, fps=min(sampling.fps, max(sampling.min_fps, rate)))


def _check_metadata(
    capture: cv2.VideoCapture, name: str, limits: MediaLimits, sampling: VideoSampling,
    header_seconds: float | None = None,
) -> VideoSampling:
    """Refuse what the container admits to be over the caps before a frame is decoded, and
    fit the sampling rate to the longer of the container's and the headers' durations."""
    width = capture.get(cv2.CAP_PROP_FRAME_WIDTH)
    height = capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
    if width * height > limits.max_video_pixels:
        raise MediaTooLarge(
            f"{name}: {width:.0f}x{height:.0f} frames are over the {limits.max_video_pixels}-pixel limit"
        )
    fps = capture.get(cv2.CAP_PROP_FPS)
    count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    sampling = _fitted(sampling, limits, _duration(capture, header_seconds))
    if fps > 0 and count > 0:
        seconds = count / fps
        if seconds > limits.max_video_seconds:
            raise MediaTooLarge(
                f"{name}: {seconds:.1f} s is over the {limits.max_video_seconds:g}-second limit"
            )
        if seconds * sampling.fps > limits.max_video_frames:
            raise MediaTooLarge(
                f"{name}: {seconds:.1f} s at {sampling.fps:g} frames per second is over the "
                f"{limits.max_video_frames}-frame limit"
            )
    return sampling


def _sample(
    capture: cv2.VideoCapture, name: str, limits: MediaLimits, sampling: VideoSampling,
    seconds: float | None = None,
) -> tuple[FrameHash, ...]:
    # max_video_frames caps the frame hashes one video yields (4 h at 1 fps is 14,400);
    # decoded frames are capped through the duration, checked on every frame's own timestamp.
    max_decoded = math.ceil(limits.max_video_seconds * _MAX_PLAUSIBLE_FPS)
    container_fps = capture.get(cv2.CAP_PROP_FPS)
    frames: list[FrameHash] = []
    last_hex = ""
    group_t = group_until = 0.0
    next_sample = next_probe = 0.0
    previous_thumb: np.ndarray | None = None
    first_msec: float | None = None
    end = 0.0
    decoded = 0
    # grab() decodes without the colour conversion; retrieve() pays it only for frames we look at.
    while capture.grab():
        number = decoded
        decoded += 1
        if decoded > max_decoded:
            raise MediaTooLarge(
                f"{name}: over {max_decoded} frames decoded, more than the duration limit allows"
            )
        msec = capture.get(cv2.CAP_PROP_POS_MSEC)
        if math.isfinite(msec) and msec >= 0:
            first_msec = msec if first_msec is None else first_msec
            t = (msec - first_msec) / 1000.0
        else:  # no usable timestamp: the nominal frame rate is all there is
            t = number / container_fps if container_fps > 0 else 0.0
        end = msec / 1000.0 if math.isfinite(msec) and msec >= 0 else t
        if t > limits.max_video_seconds:
            raise MediaTooLarge(
                f"{name}: frame at {t:.1f} s is over the {limits.max_video_seconds:g}-second limit"
            )
        regular = t >= next_sample
        probe = sampling.scene_probe_fps > 0 and t >= next_probe
        grouped = group_until > t
        if not (regular or probe or grouped):
            continue
        ok, bgr = capture.retrieve()
        if not ok or bgr is None or bgr.ndim != 3:
            raise UnsupportedMedia(f"{name}: frame {number} could not be decoded")
        if bgr.shape[0] * bgr.shape[1] > limits.max_video_pixels:
            raise MediaTooLarge(
                f"{name}: frame {number} is {bgr.shape[1]}x{bgr.shape[0]}, "
                f"over the {limits.max_video_pixels}-pixel limit"
            )
        cut = False
        if probe:
            next_probe = _next_tick(t, sampling.scene_probe_fps)
            thumb = _thumbnail(bgr)
            if previous_thumb is not None:
                difference = float(np.mean(cv2.absdiff(thumb, previous_thumb)))
                cut = difference > sampling.scene_threshold
            previous_thumb = thumb
        if regular:
            next_sample = _next_tick(t, sampling.fps)
        if not (regular or cut or grouped):
            continue
        rgb: npt.NDArray[np.uint8] = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
        value = pdq_of_rgb(rgb)
        if regular or (cut and not sampling.cuts_join_sample):
            group_t = t
        if regular or cut:
            group_until = t + sampling.group_seconds
        if value.hex == last_hex:
            continue  # a static stretch is one frame: keep the first
        last_hex = value.hex
        frames.append(FrameHash(number, group_t, value))
        if sampling.trim_bars:
            box = regions.bars(rgb)
            if not box.is_full(rgb):
                frames.append(FrameHash(number, group_t, pdq_of_rgb(np.ascontiguousarray(box.crop(rgb)))))
        if len(frames) > limits.max_video_frames:
            if sampling.fps > sampling.min_fps > 0 and t > 0:
                # Project the whole video's hashes from the share decoded so far.
                total = max(t, _duration(capture, seconds))
                refit = _fitted(sampling, limits, total, len(frames) / (t * sampling.fps))
                if refit.fps < sampling.fps:
                    raise _OverCap(refit)
            raise MediaTooLarge(f"{name}: more than {limits.max_video_frames} sampled frames")
    if decoded == 0:
        raise UnsupportedMedia(f"{name}: the video has no decodable frames")
    _check_whole(capture, name, decoded, end, seconds)
    return tuple(frames)


def _duration(capture: cv2.VideoCapture, seconds: float | None) -> float:
    """The longer of the container's and the headers' durations, 0 when neither is known."""
    fps, count = capture.get(cv2.CAP_PROP_FPS), capture.get(cv2.CAP_PROP_FRAME_COUNT)
    known = [s for s in (count / fps if fps > 0 and count > 0 else None, seconds)
             if s is not None and math.isfinite(s) and s > 0]
    return max(known, default=0.0)


def _check_whole(capture: cv2.VideoCapture, name: str, decoded: int, end: float,
                 seconds: float | None) -> None:
    """Refuse a video whose frames stop decoding well before its end: damaged (not cut
    short, which media_headers sees) past some byte, its hash would be of a part of the video,
    shared as if it were the whole, as a truncated upload's would be."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    interval = 1 / fps if fps > 0 else 0.0
    if seconds is None:
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        seconds = count / fps if fps > 0 and count > 0 else None
    if seconds is None or not math.isfinite(seconds):
        return
    reached = end + interval
    if reached < seconds - max(_END_SLACK_SECONDS, 2 * interval):
        raise UnsupportedMedia(
            f"{name}: the video is damaged: its frames decode to {reached:.1f} s of its {seconds:.1f} s "
            f"({decoded} frames), then stop; only the whole video can be hashed"
        )


def _thumbnail(bgr: np.ndarray) -> np.ndarray:
    """32x32 gray: every n-th pixel first (area-averaging a full HD frame costs ~4 ms, this
    ~0.3 ms), keeping at least 4x4 samples per thumbnail pixel so noise still averages out."""
    step = max(1, min(bgr.shape[:2]) // (4 * _THUMB))
    small = cv2.resize(bgr[::step, ::step], (_THUMB, _THUMB), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)


def _next_tick(t: float, rate: float) -> float:
    """The next point of the regular grid k / rate strictly after t (no drift, no bunching)."""
    return (math.floor(t * rate + 1e-6) + 1) / rate
