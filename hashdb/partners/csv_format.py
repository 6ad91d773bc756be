"""CSV: the cells `hashdb export --format csv` writes, and the files `hashdb import` reads, that
export (back into the entries the JSONL feed carries) and python-threatexchange's
`threatexchange dataset -P --csv` (hash lines with their tags). Text only: entries are checked
by mirror.py, hashes by the service."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hashdb.errors import InvalidInput

# The first twelve are the columns of every CSV export; the rest came later (an import reads
# a file without them). frames, derived: JSON as in the JSONL feed; tmk: base64; feed: the
# database's feed identity, as every JSONL line has it.
CSV_COLUMNS = ("seq", "kind", "id", "signal", "hash", "quality", "media_type", "labels", "status",
               "incident", "created_at", "at", "agree", "disagree", "false_positive", "frames", "derived", "tmk",
               "feed")
CSV_REQUIRED = CSV_COLUMNS[:12]
# Spreadsheets execute a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The escape itself is escaped too, so an import takes exactly one quote off any cell.
ESCAPE = "'"


def csv_cell(value: object) -> str:
    text = "" if value is None else value if isinstance(value, str) else \
        json.dumps(value, separators=(",", ":")) if isinstance(value, (list, dict)) else str(value)
    return ESCAPE + text if text.startswith(FORMULA_STARTS + (ESCAPE,)) else text


# What pytx's `dataset --csv` writes (threatexchange/cli/dataset_cmd.py, _print_csv).
PYTX_COLUMNS = ("signal_type", "signal_str", "collab", "category", "tags")
# pytx's aggregate opinions (its AggregateSignalOpinionCategory, by name) of a signal that are
# not "this is the collaboration's content": not shared as such, with why (formats.py).
PYTX_POSITIVE = "POSITIVE_CLASS"  # the collaboration's content: the one category shared here
PYTX_NEGATIVE = "NEGATIVE_CLASS"  # a false positive, test data
PYTX_SEED = "INVESTIGATION_SEED"  # an indirect indicator that pytx says needs verifying
PYTX_DISPUTED = "DISPUTED"  # some of the collaboration's opinions positive, some negative
# A tmk record's base64 cell is 351,128 characters; Python's csv refuses fields over 131,072.
MAX_FIELD = 1 << 20
INTEGER_COLUMNS = ("seq", "id", "quality", "agree", "disagree", "false_positive")


def kind_of(first_line: bytes) -> str | None:
    """"hashdb" (our export), "pytx" (pytx's dataset CSV) or None, from a file's header line."""
    try:
        header = next(csv.reader([first_line.decode("utf-8-sig").strip("\r\n")]), [])
    except (UnicodeDecodeError, csv.Error):
        return None
    if tuple(header[:len(CSV_REQUIRED)]) == CSV_REQUIRED:
        return "hashdb"
    if tuple(header) == PYTX_COLUMNS:
        return "pytx"
    return None


@contextmanager
def _rows(path: Path) -> Iterator[Iterator[tuple[str, list[str]]]]:
    """The file's rows after its header, each with where it is (`path:line`, the line it ends on)."""
    old = csv.field_size_limit()
    csv.field_size_limit(MAX_FIELD)
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)

            def rows() -> Iterator[tuple[str, list[str]]]:
                try:
                    next(reader, None)  # the header, checked by the caller
                    for cells in reader:
                        if cells:  # a blank line
                            yield f"{path}:{reader.line_num}", cells
                except csv.Error as exc:
                    raise InvalidInput(f"{path}:{reader.line_num}: not CSV ({exc})") from None
                except UnicodeDecodeError:
                    raise InvalidInput(f"{path}:{reader.line_num + 1}: not UTF-8 text") from None

            yield rows()
    finally:
        csv.field_size_limit(old)


def _header(path: Path) -> list[str]:
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle), [])


# hashdb's own export ----------------------------------------------------------------------------


def feed_lines(path: Path) -> Iterator[tuple[str, object]]:
    """Each row of `hashdb export --format csv` as the JSONL feed's entry for the same change."""
    header = _header(path)
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if unknown or len(set(header)) != len(header):
        raise InvalidInput(f"{path}:1: not a hashdb CSV header ({'unknown' if unknown else 'repeated'} column "
                           f"{(unknown or [n for n in header if header.count(n) > 1])[0][:40]!r})")
    with _rows(path) as rows:
        for where, cells in rows:
            if len(cells) != len(header):
                raise InvalidInput(f"{where}: expected {len(header)} cells, as the header has, got {len(cells)}")
            yield where, _entry({name: _unescaped(cell) for name, cell in zip(header, cells)}, where)


def _unescaped(cell: str) -> str:
    # The export puts ESCAPE before a cell a spreadsheet would run as a formula, and before one
    # that starts with ESCAPE itself: taking one off any cell that has it undoes exactly that.
    return cell[1:] if cell.startswith(ESCAPE) else cell


def _entry(row: dict[str, str], where: str) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for name, cell in row.items():
        if name in INTEGER_COLUMNS:
            # Not digits: left as text, for the entry check to refuse with its own message.
            doc[name] = None if cell == "" else int(cell) if cell.isascii() and cell.isdigit() else cell
        elif name == "labels":
            doc[name] = cell.split(";") if cell else []
        elif name in ("frames", "derived"):
            if cell:
                try:
                    doc[name] = json.loads(cell)
                except ValueError:
                    raise InvalidInput(f"{where}: {name} is not JSON") from None
        elif name == "tmk":
            if cell:
                doc[name] = cell
        else:
            doc[name] = None if name in ("incident", "feed") and cell == "" else cell
    return doc


# python-threatexchange's dataset ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PytxRow:
    where: str
    line: str  # pytx's local-file line for the signal, `<signal type> <signal>`
    tags: tuple[str, ...]
    category: str  # pytx's aggregate opinion: POSITIVE_CLASS, NEGATIVE_CLASS, DISPUTED, ...


def pytx_rows(path: Path) -> Iterator[PytxRow]:
    with _rows(path) as rows:
        for where, cells in rows:
            if len(cells) != len(PYTX_COLUMNS):
                raise InvalidInput(f"{where}: expected {len(PYTX_COLUMNS)} cells ({', '.join(PYTX_COLUMNS)}), "
                                   f"got {len(cells)}")
            signal_type, signal, _collab, category, tags = cells
            if not signal_type.strip() or not signal.strip():
                raise InvalidInput(f"{where}: signal_type and signal_str must not be empty")
            yield PytxRow(where, f"{signal_type.strip()} {signal.strip()}", tuple(tags.split()), category.strip())
