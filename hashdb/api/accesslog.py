"""The access log's lines are the server's, not the client's: the logged path is percent-encoded
again, so `%0a`, `%00` or a quote in a request cannot start a forged line or break a field.

Imported by hashdb/api/server.py in the gunicorn master: gunicorn only, nothing heavy."""

from __future__ import annotations

import datetime
import logging
import sys
import time
import traceback
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from gunicorn.glogging import Logger

from hashdb.trust import keys

# Characters left as they are in a logged path: RFC 3986's unreserved and sub-delims, ":", "@"
# and "/". "%" is not among them, so "%0A" in the log was a newline and "%250a" a literal "%0a".
_SAFE = "/:@!$&'()*+,;=-._~"


# Cached: a server logs the same few paths and methods all day, and quoting one cost a lookup
# about 2 us a field. Bounded, as clients choose what they send.
@lru_cache(maxsize=512)
def escape_path(path: str) -> str:
    """WSGI's PATH_INFO (bytes decoded as latin-1) as printable ASCII with nothing a log reader
    could mistake: control characters, spaces, quotes, backslashes and non-ASCII are %XX."""
    return quote(path.encode("latin-1", "backslashreplace"), safe=_SAFE)


@lru_cache(maxsize=64)
def escape_token(value: str) -> str:
    return quote(value.encode("latin-1", "backslashreplace"), safe="-_.!~*'")


# Path without the query string: a GET lookup's hash stays out of the log, and no header is
# written: of the API key, only its public prefix (k: `hdb_<12 hex>`, as `hashdb keys list`
# shows it, "-" without one), so an operator can tell which partner sent a burst of requests or
# of 401s. It is the key presented, checked or not: a 401's line names the key tried.
FORMAT = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms %(k)s'


class AccessLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, writing our format with the request-controlled atoms escaped.

    gunicorn's own `access` first builds every atom it knows, each request and response header
    and every environ variable among them: about a tenth of a lookup's time in the worker.
    This builds only the atoms FORMAT uses."""

    _second = -1
    _stamp = ""

    def now(self) -> str:
        # gunicorn formats the time on every line; it changes once a second.
        second = int(time.time())
        if second != self._second:
            self._second, self._stamp = second, super().now()
        return self._stamp

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: datetime.timedelta) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        sent = getattr(resp, "sent", None)
        atoms = {
            "h": environ.get("REMOTE_ADDR", "-"),
            "t": self.now(),
            # The protocol (H) is checked by gunicorn's parser; the path and method come as sent.
            "m": escape_token(str(environ.get("REQUEST_METHOD", "-"))),
            "U": escape_path(str(environ.get("PATH_INFO", "-"))),
            "H": environ.get("SERVER_PROTOCOL", "-"),
            "s": status,
            "B": "-" if sent is None else sent,
            "M": request_time.seconds * 1000 + request_time.microseconds // 1000,
            "k": keys.presented(str(environ.get("HTTP_AUTHORIZATION", ""))) or "-",
        }
        try:
            line = FORMAT % atoms
            handlers = self.access_log.handlers
            if all(_plain(h) for h in handlers):
                # logging's record, filters and formatter cost more than the rest of this line
                # (a tenth of a lookup's CPU): a plain stream handler gets the line directly.
                for handler in handlers:
                    handler.acquire()
                    try:
                        handler.stream.write(line + handler.terminator)
                        handler.flush()
                    finally:
                        handler.release()
            else:
                self.access_log.info("%s", line)
        except Exception:
            self.error(traceback.format_exc())

    def _set_handler(self, log: Any, output: Any, fmt: Any, stream: Any = None) -> None:
        # gunicorn writes `accesslog = "-"` to stdout; `hashdb serve --access-log -` says stderr,
        # which keeps stdout free for whatever runs the server.
        super()._set_handler(log, output, fmt, sys.stderr if output == "-" else stream)


def _plain(handler: logging.Handler) -> bool:
    """A stream or file handler writing each message as it is (gunicorn's own, "%(message)s")."""
    formatter = handler.formatter
    return (type(handler) in (logging.StreamHandler, logging.FileHandler) and not handler.filters
            and formatter is not None and formatter._fmt == "%(message)s")
