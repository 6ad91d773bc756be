"""The HASHDB_* variables the server (and the commands that open a database) read, each parsed
and checked here and nowhere else. `hashdb serve` checks them before gunicorn starts, and
create_app reads them through the same table: past that point a bad value is only a worker's
traceback and "Worker failed to boot", never a line that names the variable."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hashdb.errors import InvalidInput

PREFIX = "HASHDB_"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class _Refused(ValueError):
    """A value outside what a setting allows; the message says what is allowed."""


@dataclass(frozen=True, slots=True)
class Setting:
    # The Flask config key; the variable is HASHDB_<key>.
    key: str
    parse: Callable[[str], Any]
    # A secret's value is never echoed in an error, only its length.
    secret: bool = False

    @property
    def variable(self) -> str:
        return PREFIX + self.key


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise _Refused(f"a whole number from {low} to {high}")
        return value

    return parse


def _number(low: float, high: float, unit: str = "") -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            value = math.nan
        # float() takes "nan" and "inf": neither is a rate or a number of seconds.
        if not math.isfinite(value) or not low <= value <= high:
            raise _Refused(f"a number{unit} from {low:.10g} to {high:.10g}")
        return value

    return parse


def boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _Refused(f"one of {', '.join(_TRUE)} or {', '.join(_FALSE)}")


def _text(text: str) -> str:
    if not text.isprintable():
        raise _Refused("printable text (no control characters)")
    return text


def _secret(text: str) -> str:
    from hashdb.trust.keys import MIN_SECRET

    if len(text) < MIN_SECRET:
        raise _Refused(f"at least {MIN_SECRET} characters")
    return text


# libpq accepts URLs and `key=value` connection strings; a file name is neither.
_CONNINFO = re.compile(r"^\s*(host|hostaddr|dbname|user|port|service)\s*=")


def is_dsn(target: str | Path) -> bool:
    text = str(target)
    return text.startswith(("postgresql://", "postgres://")) or bool(_CONNINFO.match(text))


def _dsn(text: str) -> str:
    if not is_dsn(text):
        raise _Refused("a PostgreSQL DSN (postgresql://... or host=... dbname=...)")
    return text


def _taxonomy(text: str) -> str:
    from hashdb.trust.taxonomy import Taxonomy

    try:
        Taxonomy.load(text)
    except InvalidInput as exc:
        raise _Refused(f"a readable taxonomy JSON file ({exc})") from exc
    return text


def _directory(text: str) -> str:
    if not text or (Path(text).exists() and not Path(text).is_dir()):
        raise _Refused("a directory (created if missing)")
    return text


def _program(text: str) -> str:
    if not (Path(text).is_file() and os.access(text, os.X_OK)):
        raise _Refused("the path of an executable ffmpeg")
    return text


# Every HASHDB_* variable a server reads. HASHDB_RUN_DIR and HASHDB_WORKERS are not here:
# `hashdb serve` sets them itself for its workers. The bounds are what the code can honour:
# a body is held in a worker's memory whole before a thread sees it, so MAX_CONTENT_LENGTH
# stops at 1 GiB; a rate, burst or interval must be a finite number ("nan" parses as a float).
SETTINGS: tuple[Setting, ...] = (
    Setting("DB", _text),
    Setting("DSN", _dsn, secret=True),  # may carry a password
    Setting("MAX_CONTENT_LENGTH", _integer(1024, 1 << 30)),
    Setting("MAX_BATCH", _integer(1, 100_000)),
    Setting("RATE_LIMIT", _number(0, 1_000_000, " of requests per second")),
    Setting("RATE_BURST", _number(1, 1_000_000)),
    Setting("AUTH_FAILURE_RATE", _number(0, 1_000_000, " of failures per second")),
    Setting("AUTH_FAILURE_BURST", _number(1, 1_000_000)),
    Setting("LOAD_INDEX_IN_BACKGROUND", boolean),
    Setting("WEBHOOK_INTERVAL", _number(0, 86400, " of seconds")),
    Setting("METRICS_INTERVAL", _number(0, 86400, " of seconds")),
    Setting("METRICS_TOKEN", _text, secret=True),
    Setting("CONSOLE", boolean),
    Setting("WRITE_TIMEOUT", _number(0, 3600, " of seconds")),
    Setting("BODY_TIMEOUT", _number(1, 3600, " of seconds")),
    Setting("SECRET", _secret, secret=True),
    # Flask's own keys, which the HASHDB_ prefix reaches too: the console's cookie signing key
    # (derived from the server secret when unset) and secure-only cookies.
    Setting("SECRET_KEY", _secret, secret=True),
    Setting("SESSION_COOKIE_SECURE", boolean),
    Setting("TAXONOMY", _taxonomy),
    Setting("INDEX_DIR", _directory),
    Setting("WEBHOOK_ALLOW_LOOPBACK", boolean),
    Setting("SHARE_KEYPOINTS", boolean),
    Setting("KEYPOINTS", boolean),
    Setting("FFMPEG", _program),
)
_BY_VARIABLE = {setting.variable: setting for setting in SETTINGS}


def _shown(setting: Setting, text: str) -> str:
    if setting.secret:
        return f"{setting.variable} ({len(text)} characters)"
    value = text if len(text) <= 80 else text[:80] + "…"
    return f"{setting.variable}={value!r}"


def read(variable: str, environ: Mapping[str, str] | None = None) -> Any:
    """One setting's parsed value, or None when it is unset (or set empty)."""
    setting = _BY_VARIABLE[variable]
    text = (os.environ if environ is None else environ).get(variable)
    if not text:
        return None
    try:
        return setting.parse(text)
    except _Refused as exc:
        raise InvalidInput(f"{_shown(setting, text)} is not allowed: expected {exc}") from None


# HASHDB_* names read elsewhere: by the CLI (a server to talk to, its key), or set by `hashdb
# serve` for its own workers.
OTHER_VARIABLES = ("HASHDB_SERVER", "HASHDB_API_KEY", "HASHDB_RUN_DIR", "HASHDB_WORKERS")


def misspelt(environ: Mapping[str, str] | None = None) -> list[str]:
    """A line for each HASHDB_* variable set that nothing reads but is one typo from one that
    is (a RATE_LIMT for RATE_LIMIT): unnoticed, the server would run with the default it was meant to
    change. Other unknown names are left alone; test harnesses set their own."""
    import difflib

    known = [*_BY_VARIABLE, *OTHER_VARIABLES]
    out = []
    for name in sorted(os.environ if environ is None else environ):
        if name.startswith(PREFIX) and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
            if close:
                out.append(f"{name} is not a setting hashdb reads: did you mean {close[0]}?")
    return out


def server_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The parsed value of every server setting set in `environ` (default os.environ), keyed
    as the Flask config is; InvalidInput naming the first variable that is wrong."""
    values = {setting.key: read(setting.variable, environ) for setting in SETTINGS}
    return {key: value for key, value in values.items() if value is not None}
