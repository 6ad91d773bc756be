"""`hashdb hash`: hash media locally; nothing leaves the machine."""

from __future__ import annotations

import sys
from typing import Any

import click

from hashdb.cli.common import (
    cli,
    emit,
    jobs_option,
    json_option,
    located,
    progress,
    shown,
    without_skipped,
)
from hashdb.errors import HashDBError


@cli.command("hash")
@click.argument("paths", nargs=-1, required=True)
@click.option("--signals", help="Comma-separated signals, e.g. pdq,phash,md5 (default: md5,sha256,pdq,phash; "
                                 "videos also vpdq frames, and tmk when tmkpy and ffmpeg are installed).")
@click.option("--for-lookup", is_flag=True,
              help="Hash as `hashdb lookup` does: add the 7 turned and mirrored PDQs and a lookup's own "
                   "regions, for `hashdb lookup FILE.jsonl` later. Such lines cannot be submitted.")
@click.option("--keypoints", "with_keypoints", is_flag=True,
              help="Also each image's keypoints (about 9,200 base64 characters a line), which a database "
                   "stores to find crops: for `hashdb submit hashes.jsonl` later (`hashdb submit FILE` "
                   "computes them itself). Not with --for-lookup: a lookup's keypoints never leave it.")
@jobs_option
@json_option
def hash_command(paths: tuple[str, ...], signals: str | None, for_lookup: bool, with_keypoints: bool,
                 jobs: int | None, as_json: bool) -> None:
    """Hash images and videos locally; nothing leaves the machine.

    Directories are walked, and their files hashed on every core (--jobs). A file that cannot
    be hashed is reported on its own line and the rest go on; the exit status is 1 if any failed.

    A flat video (one colour throughout) has no TMK: asked for by name, it is left out with a
    note ("notes" in --json) and the other signals are printed.

    \b
    Example:
        hashdb hash --json photos/ clip.mp4 > hashes.jsonl
        hashdb hash --for-lookup --json uploads/ > queries.jsonl   # then: hashdb lookup queries.jsonl
        hashdb hash --signals md5,tmk --json clip.mp4    # fails if tmkpy or ffmpeg is missing
        hashdb hash --keypoints --json removed/ > share.jsonl   # then: hashdb submit share.jsonl
    """
    from hashdb.config import Settings
    from hashdb.hashing.registry import TMK_SIGNAL, get_signal
    from hashdb.hashing.tmk_video import unavailable
    from hashdb.io.inputs import BadInput, FileInput, expand
    from hashdb.service import HashingService

    if with_keypoints and for_lookup:
        raise click.UsageError("--keypoints is for hashes to submit; a lookup computes its own and never prints them")
    if with_keypoints:
        from hashdb.service.local import settings_from_env

        if not settings_from_env().keypoints:
            raise click.UsageError("--keypoints while HASHDB_KEYPOINTS=0 turns them off here")
    # Keypoints are no hash anyone matches by value, and cost an ORB pass (about 5 ms an image):
    # printed only when asked for.
    service = HashingService(Settings(keypoints=with_keypoints))
    wanted = [s.strip() for s in signals.split(",")] if signals is not None else None
    if wanted is not None and not any(wanted):
        raise click.UsageError("--signals is empty: name the signals to compute, e.g. md5,pdq")
    failed = 0
    items = without_skipped(expand(paths))
    if wanted:
        for name in wanted:
            if name != TMK_SIGNAL:
                get_signal(name)  # an unknown signal is one error, not one per file
        missing = unavailable() if TMK_SIGNAL in wanted else None
        if missing is not None:
            raise click.ClickException(missing)
    answers = service.hash_files([i.path for i in items if isinstance(i, FileInput)], wanted,
                                 dihedral=for_lookup, jobs=jobs)
    from hashdb.io import output  # once the workers have started: the parent's alone to use

    for item in progress(items, "hashing"):
        if not isinstance(item, FileInput):
            failed += 1
            message = item.error.message if isinstance(item, BadInput) else "not a media file"
            message = located(item.input, message).removeprefix(f"{shown(item.input)}: ")
            emit(as_json, {"path": item.input, "error": message}, f"{shown(item.input)}: error: {message}")
            continue
        answer = next(answers)
        if isinstance(answer, HashDBError):
            failed += 1
            message = located(item.input, answer.message).removeprefix(f"{shown(item.input)}: ")
            emit(as_json, {"path": item.input, "error": message}, f"{shown(item.input)}: error: {message}")
            continue
        doc = output.hashes_json(answer)
        emit(as_json, doc, _hashes_text(doc))
    if failed:
        sys.exit(1)


def _hashes_text(doc: dict[str, Any]) -> str:
    # A file name may hold a newline or a terminal escape: shown() escapes it, so a name
    # cannot print a line that reads as another file's answer.
    parts = [shown(doc["path"]), doc["media_type"]]
    for key, value in doc.items():
        if key == "pdq":
            parts.append(f"pdq:{value['hash']} (quality {value['quality']})")
        elif key == "derived":
            # PDQs of crops and other derived views, in the style of the whole image's pdq.
            parts.extend(f"pdq/{d['via']}:{d['pdq']} (quality {d['quality']}"
                         + (f", share {d['share']:.2f})" if "share" in d else ")") for d in value)
        elif key in ("tmk", "keypoints"):
            parts.append(f"{key}:({len(value)} base64 characters; --json prints them)")
        elif key == "pdq_dihedral":
            parts.append(f"pdq turned and mirrored: {len(value)}")
        elif key not in ("path", "media_type", "frames", "pdq_variants", "notes"):
            parts.append(f"{key}:{value}")
    if "frames" in doc:
        parts.append(f"{len(doc['frames'])} frames")
    parts.extend(f"(note: {note})" for note in doc.get("notes", []))
    return "  ".join(parts)
