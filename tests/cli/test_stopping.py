"""Long-running commands stop cleanly on SIGTERM as on Ctrl-C, also where SIGINT is ignored (a
background job, nohup, some CI runners), and leave no server behind; a busy port says so."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HASHDB = [sys.executable, "-c", "from hashdb.cli import cli; cli()"]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HASHDB_")}


def ignore_sigint() -> None:
    # What a shell does to a background job (and nohup, and some CI runners) before exec.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def children(pid: int) -> set[int]:
    """Every descendant of `pid`, from /proc (Linux)."""
    found: set[int] = set()
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            text = Path(f"/proc/{parent}/task/{parent}/children").read_text()
        except OSError:
            continue
        for child in map(int, text.split()):
            found.add(child)
            pending.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_demo_stopped_by_sigterm_stops_its_server(tmp_path):
    # Issue item 20: `hashdb demo` killed with SIGTERM left its gunicorn child serving.
    process = subprocess.Popen([*HASHDB, "demo", "--port", "0", "--db", str(tmp_path / "demo.sqlite")],
                               cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, preexec_fn=ignore_sigint)
    server: set[int] = set()
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 180
        for line in process.stdout:
            if "serving until Ctrl-C" in line or time.monotonic() > deadline:
                break
        server = children(process.pid)
        assert server, "the demo started no server"
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in server) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [pid for pid in server if alive(pid)]
        assert not left, f"server processes {left} outlived the demo"
    finally:
        for pid in server | ({process.pid} if process.poll() is None else set()):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        process.wait()
        assert process.stdout is not None
        process.stdout.close()


def test_demo_on_a_busy_port_says_so_and_names_the_option(tmp_path):
    # Issue item 20: a busy port gave no hint.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([*HASHDB, "demo", "--once", "--port", str(port), "--db", str(tmp_path / "d.sqlite")],
                                cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=180)
    assert result.returncode != 0
    [message] = result.stderr.strip().splitlines()
    assert f"port {port}" in message and "in use" in message and "--port" in message
