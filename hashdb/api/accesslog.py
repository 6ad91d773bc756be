"""The access log's lines are the server's, not the client's: the logged path is percent-encoded
again, so `%0a`, `%00` or a quote in a request cannot start a forged line or break a field.

Imported by hashdb/api/server.py in the gunicorn master: gunicorn only, nothing heavy."""

from __future__ import annotations

import datetime
import sys
from typing import Any
from urllib.parse import quote

from gunicorn.glogging import Logger

# Characters left as they are in a logged path: RFC 3986's unreserved and sub-delims, ":", "@"
# and "/". "%" is not among them, so "%0A" in the log was a newline and "%250a" a literal "%0a".
_SAFE = "/:@!$&'()*+,;=-._~"


def escape_path(path: str) -> str:
    """WSGI's PATH_INFO (bytes decoded as latin-1) as printable ASCII with nothing a log reader
    could mistake: control characters, spaces, quotes, backslashes and non-ASCII are %XX."""
    return quote(path.encode("latin-1", "backslashreplace"), safe=_SAFE)


def escape_token(value: str) -> str:
    return quote(value.encode("latin-1", "backslashreplace"), safe="-_.!~*'")


class AccessLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger with the request-controlled atoms of our format escaped."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: datetime.timedelta) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        # The protocol (H) is checked by gunicorn's parser; the path and method come as sent.
        for name, escape in (("U", escape_path), ("m", escape_token)):
            value = atoms.get(name)
            if isinstance(value, str):
                atoms[name] = escape(value)
        return atoms

    def _set_handler(self, log: Any, output: Any, fmt: Any, stream: Any = None) -> None:
        # gunicorn writes `accesslog = "-"` to stdout; `hashdb serve --access-log -` says stderr,
        # which keeps stdout free for whatever runs the server.
        super()._set_handler(log, output, fmt, sys.stderr if output == "-" else stream)
