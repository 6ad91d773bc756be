"""`hashdb demo`: a fresh database from fixtures/media, a demo key, the API serving it, and a
ready-to-paste lookup of a near-duplicate with the answer the server gave."""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hashdb.cli.common import check_port
from hashdb.errors import HashDBError, InvalidInput
from hashdb.partners.client import Client
from hashdb.service import HashDB
from hashdb.types import Principal, Submission

LABEL = "glorification"
VARIANT = "_jpeg30"
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class DemoData:
    shared: int
    files: int
    key: str
    probe: Path
    probe_pdq: str
    signin_token: str  # one-time: signs the first visitor of the console link in with `key`


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def default_media_dir() -> Path:
    here = Path.cwd() / "fixtures" / "media"
    if here.is_dir():
        return here
    # hashdb/cli/demo.py: the repository root is three levels up.
    beside = Path(__file__).resolve().parents[2] / "fixtures" / "media"
    if beside.is_dir():
        return beside
    raise InvalidInput("no fixtures/media here or beside the package (an install from a wheel has none): "
                       "run the demo in a hashdb checkout, or pass --media DIR with images and their "
                       f"*{VARIANT}.jpg re-encodes")


def originals(media: Path) -> list[Path]:
    """Files that are not `<stem>_<variant>` of another file in the folder."""
    files = sorted(p for p in media.iterdir() if p.is_file() and p.suffix.lower() != ".md"
                   and not p.name.startswith("."))
    stems = {p.stem for p in files}
    return [p for p in files if not any(p.stem.startswith(s + "_") for s in stems)]


def build(service: HashDB, media: Path, say: Callable[[str], None]) -> DemoData:
    """Share every original under one label, and create an admin key for the demo."""
    organisation = service.store.ensure_org("demo")
    actor = Principal(organisation.id, organisation.name, "admin")
    submissions: list[Submission] = []
    for path in originals(media):
        try:
            submissions.append(service.submission_for(service.hash_file(path), [LABEL]))
        except HashDBError as exc:
            say(f"  skipped {path.name}: {exc.message}")
    if not submissions:
        raise InvalidInput(f"no media to share in {media}")
    results = service.submit(submissions, actor)
    service.rebuild_index()
    shared = [Path(s.input) for s in submissions]
    probe = next((v for p in shared for v in sorted(media.glob(f"{p.stem}{VARIANT}.*"))), None)
    if probe is None:
        raise InvalidInput(f"no *{VARIANT}.* near-duplicate of a shared original in {media}")
    pdq = service.hash_file(probe).get("pdq")
    if pdq is None:
        raise InvalidInput(f"{probe} has no PDQ")
    key, record = service.create_key("demo", "admin", actor)
    link = service.create_signin_link(record.id, actor)
    return DemoData(sum(len(r.ids) for r in results), len(submissions), key, probe, pdq.hex, link)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(db: Path, host: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from hashdb.cli import cli; cli()", "serve", "--db", str(db),
               "--host", host, "--port", str(port), "--workers", str(workers)]
    # The server's logs go to stderr, so stdout carries only what the demo prints.
    return subprocess.Popen(command, stdout=sys.stderr)


def wait_ready(client: Client, server: subprocess.Popen[bytes], timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise InvalidInput(f"the server exited with status {server.returncode} before it was ready")
        if client.ready():
            return
        time.sleep(0.1)
    raise InvalidInput(f"the server was not ready after {timeout:.0f} s")


def curl_command(base_url: str, key: str, pdq: str) -> str:
    url = f"{base_url}/v1/lookup?{urllib.parse.urlencode({'signal': 'pdq', 'hash': pdq})}"
    return f"curl -s -H {shlex.quote('Authorization: Bearer ' + key)} {shlex.quote(url)}"


def console_link(base_url: str, token: str) -> str:
    return f"{base_url}/ui/signin/link?{urllib.parse.urlencode({'token': token})}"


def hashdb_command() -> str:
    """`hashdb` as this shell can run it: the README installs it in .venv/bin, which need not be
    on PATH, so a bare `hashdb` would be "command not found". The script that is running (or
    the one beside this Python) unless `hashdb` on PATH is that same file."""
    running = Path(sys.argv[0])
    if running.name != "hashdb":  # run as `python -c ...`: the script installed beside this Python
        running = Path(sys.executable).parent / "hashdb"
    on_path = shutil.which("hashdb")
    if not running.is_file():
        return "hashdb" if on_path else f"{shlex.quote(sys.executable)} -c 'from hashdb.cli import cli; cli()'"
    if on_path and Path(on_path).resolve() == running.resolve():
        return "hashdb"
    return shlex.quote(str(running.absolute()))


def run(service: HashDB, db: Path, media: Path, host: str, port: int, workers: int, once: bool,
        say: Callable[[str], None], kept: bool = True) -> None:
    if port:
        check_port(host, port)
    say(f"building a demo database from {media} ...")
    data = build(service, media, say)
    service.store.close()
    port = port or free_port(host)
    base_url = f"http://{host}:{port}"
    server = start_server(db, host, port, workers)
    # SIGTERM (a service manager, `kill`) unwinds like Ctrl-C, so the finally below stops the
    # server instead of leaving it serving on its own.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        client = Client(base_url, data.key)
        wait_ready(client, server)
        answer = client.lookup_one("pdq", data.probe_pdq)
        say("")
        say(f"database: {db} ({data.shared} hashes of {data.files} files, label {LABEL})"
            + ("" if kept else "; removed when the demo stops (--db PATH keeps one)"))
        say(f"API key (admin, for this demo only): {data.key}")
        if once:
            # The server stops when this returns: no console link, and the commands below are
            # what was run, to run again against `hashdb demo` without --once.
            say(f"served on {base_url} for this one lookup; it stops now (--once)")
        else:
            say(f"serving on {base_url}  (OpenAPI: {base_url}/openapi.json)")
            say(f"web console: {console_link(base_url, data.signin_token)}")
            say("  (one-time link: it signs you in with the demo key; afterwards sign in at "
                f"{base_url}/ui/ with the key above)")
        say("")
        say(f"Look up {data.probe.name}, a JPEG-quality-30 re-encode of a shared image:")
        say("")
        say("  " + curl_command(base_url, data.key, data.probe_pdq))
        say("")
        say(json.dumps(answer, indent=2, ensure_ascii=False))
        say("")
        say("The same from the command line (files are hashed on your side; only hashes are sent):")
        say("")
        say(f"  {hashdb_command()} lookup --server {base_url} --api-key {shlex.quote(data.key)} "
            f"{shlex.quote(str(data.probe))}")
        if once:
            say("")
            say(f"the demo server has stopped (--once): run `{hashdb_command()} demo` without --once to try these")
            return
        say("")
        say("serving until Ctrl-C")
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
