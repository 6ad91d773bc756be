"""/readyz answers for the whole server: under `hashdb serve` it is 200 only once every worker
has loaded its index, so a client that waited for it never meets a worker answering 503."""

from __future__ import annotations

import subprocess
import sys

from hashdb.api import create_app


def test_readyz_waits_for_every_worker(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    monkeypatch.setenv("HASHDB_RUN_DIR", str(run_dir))
    monkeypatch.setenv("HASHDB_WORKERS", "2")
    app = create_app({"DB": str(tmp_path / "db.sqlite"), "LOAD_INDEX_IN_BACKGROUND": False,
                      "WEBHOOK_INTERVAL": 0, "TESTING": True})
    client = app.test_client()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # This worker is ready; the other one has not said so yet.
        reply = client.get("/readyz")
        assert reply.status_code == 503 and reply.headers["Retry-After"] == "1"
        assert "1 of 2 workers" in reply.get_json()["error"]["message"]
        (run_dir / f"ready.{other.pid}").touch()
        assert client.get("/readyz").status_code == 200
    finally:
        other.kill()
        other.wait()
    # A worker that died no longer counts, even if its marker was left behind.
    assert client.get("/readyz").status_code == 503
    app.extensions["hashdb"].close()
