"""Settings: one frozen dataclass with the defaults PRODUCT.md promises."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class MediaLimits:
    max_bytes: int = 200 * 1024 * 1024
    # Well under Pillow's decompression-bomb limit (~89 Mpx); checked before any pixel is decoded.
    max_pixels: int = 50_000_000
    # What one image's decode may take: the decoded frame at Pillow's storage size, its RGB
    # copies and the array the hashers read, estimated from the header before any pixel is
    # decoded. 256 MiB holds a 36-megapixel RGB photo; a 7000x7000 image needs about 330 MiB.
    max_decode_bytes: int = 256 * 1024 * 1024
    max_video_seconds: float = 4 * 3600.0
    max_video_frames: int = 20_000
    max_video_pixels: int = 3840 * 2160


@dataclass(frozen=True, slots=True)
class Settings:
    # PDQ: Meta's and GIFCT's operating point; quality below 50 is unreliable by design.
    pdq_threshold: int = 31
    pdq_min_quality: int = 50
    # 64-bit imagehash signals: checked by scripts/bench_thresholds.py (see BENCHMARKS.md).
    imagehash_threshold: int = 10
    # A 64-bit hash alone names the wrong image far more often than PDQ. Measured by
    # scripts/eval_matching.py on clip art, flags and emoji (800 known, 3,920 negatives): with
    # pHash/dHash kept at <= 2 bits for queries that also carry a PDQ, 22 of the 48 false
    # positives and 23 of the 30 wrong matches were pHash matches at 0 to 2 bits (flags,
    # look-alike emoji, card faces); dropping them cost 0.009 of mean recall (resize 0.97 ->
    # 0.88). So a query carrying a PDQ (whole or derived: every file this service hashes) gets
    # no pHash/dHash matches (None); a number keeps them up to that distance. Queries of 64-bit
    # hashes alone (a partner that computes only pHash) keep imagehash_threshold.
    imagehash_threshold_with_pdq: int | None = None
    # A per-request threshold may be tighter than the default, never looser than this ceiling.
    threshold_ceilings: dict[str, int] = field(
        default_factory=lambda: {"pdq": 31, "phash": 10, "dhash": 10, "vpdq": 31}
    )
    vpdq_query_pct: float = 80.0
    vpdq_stored_pct: float = 0.0
    # A query holding this share of a stored video's frames matches it too, even when the
    # query is longer (an intro or outro added); the stored video needs this many unique good
    # frames, so a still or near-still clip cannot match whatever contains one similar frame.
    vpdq_contained_pct: float = 80.0
    vpdq_contained_min_frames: int = 5
    video_fps: float = 1.0
    # Stored videos are sampled denser than queries, so every query frame has a stored frame
    # close in time: a copy shifted by a frame or two, or cut differently, still lines up.
    video_stored_fps: float = 10.0
    # TMK+PDQF: Meta's two thresholds (tmk_default_thresholds.h), validated for TMK+PDQF. Level 1
    # is the cosine of the pure-average features, level 2 the kernel score at the best time shift.
    tmk_level1: float = 0.7
    tmk_level2: float = 0.7
    # Compute a video's TMK by default when tmkpy and ffmpeg are installed (hashing/tmk_video.py).
    tmk_hashes: bool = True
    dihedral: bool = True
    # PDQs of an image's content region (borders, caption bands, UI chrome removed), stored
    # with a submission and computed for a lookup; see hashdb/hashing/derived.py.
    derived_hashes: bool = True
    # An image's keypoints (hashing/keypoints.py): stored with a submission's PDQ record, and
    # computed for a lookup, to find crops no PDQ does. Off saves their cost: about 7 KB stored
    # per image, and an ORB pass over each image hashed.
    keypoints: bool = True
    # Whether the export feed may carry stored keypoints, to a partner who asks for them
    # (GET /v1/export?keypoints=true, `hashdb sync --keypoints`) so that its mirror finds crops
    # too. Off by default: with their positions, keypoints can be turned back into a rough
    # sketch of the picture, more than a hash gives away, so an operator shares them on purpose
    # (HASHDB_SHARE_KEYPOINTS=1). Asked for while off, the export answers 403, never a feed
    # silently without them.
    share_keypoints: bool = False
    # A record is disputed once this share of (at least this many) voting organisations disagree.
    dispute_share: float = 0.5
    dispute_min_votes: int = 2
    limits: MediaLimits = field(default_factory=MediaLimits)
    # Poisoning: a shared hash that suddenly matches far more uploads, at many members, than
    # known content does is more likely a benign viral image than a terrorist one; it is
    # quarantined for review once it has more than `spike_max_matches` matches from at least
    # `spike_min_orgs` organisations within the last `spike_window_hours` (hour buckets), each
    # organisation counting for at most spike_max_matches // spike_min_orgs + 1 of them
    # (trust/spike.py), so no fewer than `spike_min_orgs` members can trip it.
    spike_max_matches: int = 1000
    spike_min_orgs: int = 3
    spike_window_hours: int = 24
    # Match counts are buffered in memory and written at most this often, so a lookup that
    # matches does not wait for a disk commit (0: write on every lookup).
    spike_flush_seconds: float = 5.0
    # Records tagged with an incident that is still open are counted but never quarantined by
    # the spike rule: a live-streamed attack spikes by nature.
    spike_exempt_open_incidents: bool = True
    # Webhooks: attempt n failing waits webhook_backoff_seconds * 2**(n-1) before the next, at
    # most 10 minutes (delivery.MAX_BACKOFF_S), so the defaults retry a record for about 37
    # minutes (2+4+...+512+600+600 s) before giving up: a member's receiver restarting, or a
    # network cut during a live-streamed attack, no longer loses what was shared meanwhile
    # (with 6 attempts it was about a minute; found in trial). Its subscriber pauses as a
    # whole for the same doubling by its failures in a row (at most 32 s), so a dead endpoint
    # costs one timeout per pause, not one per record, and one back is found soon.
    webhook_max_attempts: int = 12
    webhook_backoff_seconds: float = 2.0
    webhook_timeout_seconds: float = 5.0
    # Plain http only to a loopback address unless allowed: payloads carry hash values.
    webhook_allow_http: bool = False
    # Webhooks go to public addresses only (no SSRF into private networks or a cloud metadata
    # service); an operator may allow loopback (tests, a relay on the same host):
    # HASHDB_WEBHOOK_ALLOW_LOOPBACK=1.
    webhook_allow_loopback: bool = False
