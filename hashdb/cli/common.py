"""The `hashdb` click group and what its commands share: options, output, opening the service.

Command modules import `cli` from here; `hashdb/cli/__init__.py` imports them so they register.
Importing them costs click and little else: each command imports what it uses when it runs,
so `hashdb --help` loads no hashing library and `hashdb hash` no store (its workers start
after the parent's imports, so every import before them is paid on one core)."""

from __future__ import annotations

import json
import shutil
import signal
import sys
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, TypeVar

import click

from hashdb.errors import HashDBError, InvalidInput

if TYPE_CHECKING:
    from hashdb.io.inputs import Item
    from hashdb.partners.client import Client
    from hashdb.service import HashDB
    from hashdb.service.media import MediaMixin
    from hashdb.service.media_pool import ProbeSwitch
    from hashdb.types import Principal

F = TypeVar("F", bound=Callable[..., Any])


def _chosen_database(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    from hashdb.service.local import choose_database

    typed = ctx.get_parameter_source(str(param.name)) == click.core.ParameterSource.COMMANDLINE
    try:
        return choose_database(value if typed else None).target
    except HashDBError as exc:
        raise click.UsageError(str(exc)) from exc


def db_option(func: F) -> F:
    # The environment is read by choose_database (HASHDB_DSN, then HASHDB_DB), the same rule
    # `hashdb serve` follows, not by click: one place decides which database a command opens.
    return click.option(
        "--db", "db_path", callback=_chosen_database, metavar="PATH|DSN",
        help="SQLite file, or a postgresql:// DSN; without it HASHDB_DSN, else HASHDB_DB, "
             "else ./hashdb.sqlite.",
    )(func)


class AsciiIntRange(click.IntRange):
    """An integer written in ASCII digits: Python's int() also reads other scripts' digits, so
    `hashdb retract ４８` (full-width) retracted record 48, which the API refuses as an id."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, str) and not value.isascii():
            self.fail(f"{value!r} is not a number written in ASCII digits", param, ctx)
        return int(super().convert(value, param, ctx))


# Ids are SQLite INTEGERs: past 2**63 - 1 Python cannot even bind them (OverflowError).
RECORD_ID = AsciiIntRange(1, 2**63 - 1)
AFTER_ID = AsciiIntRange(0, 2**63 - 1)


def jobs_option(func: F) -> F:
    return click.option("--jobs", "-j", type=click.IntRange(min=1), metavar="N",
                        help="Processes that hash files at once (default: every core this process may use).")(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="One JSON object a line, for scripts.")(func)


def org_option(func: F) -> F:
    return click.option("--org", default="local", show_default=True,
                        help="Organisation acting in local mode (not with --server: the key's acts).")(func)


class LabelOption(click.Option):
    """An option whose help names the default taxonomy's labels (`{labels}` in it): read when
    the help is shown, not each time the command module is imported."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        from hashdb.trust.taxonomy import Taxonomy

        record = super().get_help_record(ctx)
        if record is None:
            return None
        return record[0], record[1].replace("{labels}", ", ".join(Taxonomy.load(None).labels))


def pdq_quality_option(func: F) -> F:
    return click.option(
        "--pdq-quality", type=click.IntRange(0, 100), metavar="N",
        help="Quality to record for PDQ hashes given without one (pdq:HEX arguments, ThreatExchange "
             "`pdq <hex>` lines): what their hasher is known to have met. Such hashes are refused "
             "without it. (python-threatexchange's hasher refuses images below 50.)",
    )(func)


def with_pdq_quality(value: Any, quality: int | None) -> Any:
    """A PDQ without a quality gets the one the user vouched for (--pdq-quality); anything else as is."""
    import dataclasses

    from hashdb.types import HashValue, MediaHashes

    if quality is None:
        return value
    if isinstance(value, HashValue):
        return dataclasses.replace(value, quality=quality) if value.signal == "pdq" and value.quality is None else value
    if isinstance(value, MediaHashes):
        return dataclasses.replace(value, hashes=tuple(with_pdq_quality(v, quality) for v in value.hashes))
    return value


def _server_options(func: F, server_help: str) -> F:
    func = click.option("--api-key", envvar="HASHDB_API_KEY",
                        help="API key for --server (env HASHDB_API_KEY).")(func)
    return click.option("--server", envvar="HASHDB_SERVER", metavar="URL", help=server_help)(func)


def server_options(func: F) -> F:
    return _server_options(func, "Use the HTTP API at URL (the server's base URL, without /v1) "
                                 "instead of --db (env HASHDB_SERVER).")


def hashing_server_options(func: F) -> F:
    """For commands that take files: what --server sends is said in their help."""
    return _server_options(func, "Use the HTTP API at URL (the server's base URL, without /v1) "
                                 "instead of --db (env HASHDB_SERVER); files are still hashed here "
                                 "and only hashes are sent.")


def chosen_server(server: str | None) -> str | None:
    """The server to use, or None for the local --db. An option given on the command line beats
    an environment variable: `--db mirror.sqlite` with HASHDB_SERVER set stays local (the
    README promises lookups against a mirror never leave the machine); both on the command
    line is a usage error."""
    if server is None:
        return None
    ctx = click.get_current_context()
    typed = click.core.ParameterSource.COMMANDLINE
    if ctx.get_parameter_source("db_path") == typed:
        if ctx.get_parameter_source("server") == typed:
            raise click.UsageError("give --server or --db, not both")
        return None
    if ctx.get_parameter_source("org") == typed:
        # Silently dropped, a submit meant for another organisation went in as the key's.
        raise click.UsageError("--org is for a local database; over the API the key's organisation acts")
    return server


def connect(server: str, api_key: str | None) -> Client:
    from hashdb.partners.client import Client

    if not api_key:
        raise click.UsageError("--server needs --api-key (or HASHDB_API_KEY)")
    return Client(server, api_key)


def hashing_service() -> HashDB:
    """A service for hashing only: an in-memory store, nothing read or written on disk."""
    from hashdb.service import HashDB
    from hashdb.service.local import settings_from_env
    from hashdb.store.sqlite_store import SQLiteStore

    return HashDB(settings_from_env(), SQLiteStore(":memory:"))


def emit(as_json: bool, doc: dict[str, Any], text: str) -> None:
    click.echo(json_line(doc) if as_json else text)


def warn(text: str | None) -> None:
    """A warning on stderr, one line, when there is one: stdout stays the command's answer."""
    if text:
        click.echo(f"Warning: {text}", err=True)


def json_line(doc: dict[str, Any]) -> str:
    """One JSON line, UTF-8 as is; escaped (\\udce9) when it holds a file name that is not
    UTF-8, which Python keeps as lone surrogates and stdout would write as the raw byte: the
    line must stay JSON that hashdb itself, and jq, can read back."""
    line = json.dumps(doc, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(doc)
    return line


def emit_rows(as_json: bool, rows: Iterable[tuple[dict[str, Any], str]], empty: str,
              page: int | None = None, cursor: str = "id") -> None:
    """A listing, a line a row; an empty one says so on stderr (people reading a blank screen
    cannot tell "nothing" from "nothing yet"), leaving stdout empty for scripts. `page`: the
    --limit asked for; a full page says on stderr how to read on (`--after` the last row's
    `cursor` field), which a listing cut at 100 of 2,408 rows did not."""
    shown = 0
    last: dict[str, Any] = {}
    for doc, text in rows:
        emit(as_json, doc, text)
        shown += 1
        last = doc
    if not shown:
        click.echo(empty, err=True)
    elif page is not None and shown >= page and cursor in last:
        click.echo(f"{shown} shown, perhaps more: --after {last[cursor]}", err=True)


def shown(text: str) -> str:
    """An input as it can be shown on one line: quoted when empty or all blank, escaped (as a
    JSON string) when it holds anything str.isprintable refuses: newline, CR, backspace, ESC,
    C1 controls such as U+009B, and format characters such as U+202E. click strips ESC
    sequences only when stdout is not a terminal, so this is what keeps a name from forging or
    rewriting a line on screen."""
    return text if text.isprintable() and text.strip() else json.dumps(text)


def escaped(text: str) -> str:
    """Free text (a reason, a note, a description) for a line of text output: as it is when
    printable (empty too), else as a JSON string, so a line break or CR in it cannot start or
    overwrite a line."""
    return text if text.isprintable() else json.dumps(text)


def located(name: str, message: str) -> str:
    """`NAME: message`, with the name once: many errors already start with the path they are
    about, or with its file name (the video decoder's: `bad/a.mp4: a.mp4: cannot open ...`)."""
    base = PurePath(name).name
    for prefix in (f"{name}: ", f"{name}:", *((f"{base}: ",) if base and base != name else ())):
        if message.startswith(prefix):
            message = message[len(prefix):]
            break
    return f"{shown(name)}: {message}"


@contextmanager
def stopped_by_sigterm() -> Iterator[None]:
    """SIGTERM stops a long-running command the way Ctrl-C does (KeyboardInterrupt), so its
    clean-up runs; also where SIGINT is ignored (nohup, a background job, some CI runners)."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def open_service(db_path: str | Path, create: bool = False) -> HashDB:
    """Open the database at --db. Only commands that put something in it (`submit`, `import`,
    `keys create`, ...) pass create=True: a mistyped --db to `lookup` or `export` would
    otherwise make a new empty database and answer "no match" as if the list were checked."""
    from hashdb.service.local import is_dsn, open_database

    if not create:
        require_database(db_path)
    fresh = not is_dsn(db_path) and not Path(db_path).exists()
    try:
        service = open_database(db_path)
    except HashDBError as exc:
        raise click.ClickException(str(exc)) from exc
    if fresh:
        _created.append((Path(db_path), service))
    _opened.append(service)
    return service


# Every database this command opened, closed when it ends (HashdbGroup.invoke): a PostgreSQL
# session is ended, not left for the server to notice.
_opened: list[HashDB] = []


def _close_opened() -> None:
    while _opened:
        _opened.pop().store.close()


# Databases this command created, removed again if it fails (HashdbGroup.invoke): a refused
# `submit --db new.sqlite` must not leave an empty database and its secret behind.
_created: list[tuple[Path, HashDB]] = []


def _remove_created() -> None:
    from hashdb.service.local import index_dir

    while _created:
        path, service = _created.pop()
        if service.store.last_seq():  # records went in before the failure: they stay
            continue
        service.store.close()
        for leftover in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal", ".secret"))):
            leftover.unlink(missing_ok=True)
        shutil.rmtree(index_dir(path), ignore_errors=True)


def require_database(db_path: str | Path) -> None:
    """The one-line error for a --db that names no file (see open_service)."""
    from hashdb.service import local

    try:
        local.require_database(db_path, "`hashdb submit` or `hashdb import` creates one")
    except HashDBError as exc:
        raise click.ClickException(str(exc)) from exc


def check_port(host: str, port: int) -> None:
    """Refuse a port something already listens on, in one line, before any work: gunicorn
    would otherwise retry for five seconds and exit with a message that never names --port."""
    import errno
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InvalidInput(f"port {port} on {host} is in use: pick another with --port "
                                   "(--port 0 picks a free one)") from exc
            raise InvalidInput(f"cannot listen on {host}:{port} ({exc.strerror}; see --host and --port)") from exc


def local_principal(service: HashDB, org: str) -> Principal:
    from hashdb.trust.policy import check_member_org
    from hashdb.types import Principal

    # --org is printed back in audit lists and exports, as key organisations are: the same rule.
    check_member_org(org)
    organisation = service.store.ensure_org(org)
    # Local mode: whoever can write the database file runs it.
    return Principal(organisation.id, organisation.name, "admin")


def progress(items: Sequence[Item], label: str) -> Iterator[Item]:
    # A bar only on a terminal, so scripts and --json pipes stay clean; there tqdm (~35 ms to
    # import) is not imported at all.
    if len(items) <= 20 or not sys.stderr.isatty():
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, desc=label, unit="file", file=sys.stderr, leave=False, mininterval=0.5)


class UsageInOneLine(click.ClickException):
    exit_code = 2  # click's status for a usage error


class HashdbGroup(click.Group):
    """Domain errors become one-line messages with exit status 1, never tracebacks; a database
    the failed command created is removed again."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return self._invoke(ctx)
        except (click.ClickException, SystemExit) as exc:
            if not (isinstance(exc, SystemExit) and exc.code in (0, None)):
                _remove_created()
            raise
        finally:
            _created.clear()
            _close_opened()

    def _invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            # Click prints a usage error as three lines (usage, a hint, the error); a script
            # reading stderr, and a person, want the one that says what is wrong.
            where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            raise UsageInOneLine(f"{exc.format_message()} (`{where} --help` shows how)") from exc
        except HashDBError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            # A path that cannot be written or read (--out /proc/x, a folder that is a file):
            # one line naming it. OSErrors without a path are not ours to rephrase.
            if exc.filename is None:
                raise
            raise click.ClickException(f"{shown(str(exc.filename))}: {exc.strerror or exc}") from exc


@click.group(cls=HashdbGroup)
@click.version_option(package_name="hashdb")
def cli() -> None:
    """hashdb: share and match hashes of known terrorist and violent extremist content.

    \b
    hashdb hash photo.jpg                      # local only: nothing leaves the machine
    hashdb submit photo.jpg --label glorification
    hashdb lookup --json pdq:9a3f...

    Members who run python-threatexchange or HMA can add a hashdb server as an exchange:
    `threatexchange config extensions add hashdb.partners.pytx` (see the README).
    """


def without_skipped(items: Iterable[Item]) -> list[Item]:
    """Inputs less the text files a folder walk found (a README beside the images), each named
    in a note on stderr: a folder of media is hashed, submitted or looked up as a whole."""
    from hashdb.io.inputs import SkippedInput

    kept: list[Item] = []
    for item in items:
        if isinstance(item, SkippedInput):
            click.echo(f"{shown(item.input)}: skipped, {item.reason}", err=True)
        else:
            kept.append(item)
    return kept


def _resolve(service: MediaMixin, items: Sequence[Item], dihedral: bool,
             jobs: int | None = None, refused: str = "") -> list[tuple[str, Any]]:
    """Hash what needs hashing; any bad input stops the whole command before anything is sent,
    and its one-line error ends with `refused` (what was not done: "nothing was submitted").

    Files are hashed on every core (or `jobs` processes), answers kept in the order given;
    hashing stops at the first file that fails, the rest of a folder is not waited for.
    """
    from hashdb.io.inputs import BadInput

    tail = f"; {refused}" if refused else ""
    for item in items:
        if isinstance(item, BadInput):
            raise click.ClickException(located(item.input, item.error.message) + tail)
    resolved: list[tuple[str, Any]] = []
    answers = _resolving(service, items, dihedral, jobs)
    try:
        for name, value in answers:
            if isinstance(value, HashDBError):
                raise click.ClickException(located(name, value.message) + tail)
            resolved.append((name, value))
    finally:
        answers.close()
    return resolved


def _resolving(service: MediaMixin, items: Sequence[Item], dihedral: bool, jobs: int | None = None,
               probes: ProbeSwitch | None = None) -> Generator[tuple[str, Any], None, None]:
    """Each input with its hashes, or the HashDBError that says why it has none, one input at a
    time, in the order given (files hashed on every core, or `jobs` processes). Several processes start hashing before this returns,
    so what the caller does before reading (opening an index) runs alongside them."""
    from hashdb.io.inputs import FileInput

    answers = service.hash_files([i.path for i in items if isinstance(i, FileInput)], dihedral=dihedral, jobs=jobs,
                                 probes=probes)
    return _paired(items, answers, dihedral)


def _paired(items: Sequence[Item], answers: Iterator[Any], dihedral: bool) -> Generator[tuple[str, Any], None, None]:
    try:
        yield from _each_paired(items, answers, dihedral)
    finally:
        # Closed early (the first refused file of a submit): the workers stop after the files
        # in hand instead of hashing the rest of the folder for nothing.
        close = getattr(answers, "close", None)
        if close is not None:
            close()


def _each_paired(items: Sequence[Item], answers: Iterator[Any], dihedral: bool) -> Generator[tuple[str, Any], None, None]:
    from hashdb.io.inputs import BadInput, FileInput, HashedInput, HashInput

    for item in progress(items, "hashing"):
        if isinstance(item, BadInput):
            yield item.input, item.error
        elif isinstance(item, HashInput):
            yield item.input, item.value
        elif isinstance(item, HashedInput):
            if item.hashes.dihedral and not dihedral:  # a lookup's hashes offered for storing
                yield item.input, InvalidInput(
                    "hashed for a lookup (hashdb hash --for-lookup): hash without --for-lookup to submit")
            else:
                yield item.input, item.hashes
        elif isinstance(item, FileInput):
            yield item.input, next(answers)
