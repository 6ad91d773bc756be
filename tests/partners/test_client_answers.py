"""hashdb.client against servers that do not answer as hashdb does: a redirect is never
followed with the key, and an answer of the wrong shape is a one-line error, never a traceback.
Real HTTP servers on loopback (the stdlib's), so the client's real transport is exercised."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from hashdb.cli import cli
from hashdb.partners.client import Client, ServerError

PDQ = "f" * 32 + "0" * 32


class Recorder(BaseHTTPRequestHandler):
    """Answers every request with the class's `answer` and remembers what it was sent."""

    seen: list[tuple[str, str, str | None]] = []
    status = 200
    body = b"{}"
    headers_out: dict[str, str] = {}

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        type(self).seen.append((self.command, self.path, self.headers.get("Authorization")))
        self.send_response(self.status)
        for name, value in {"Content-Type": "application/json", **self.headers_out}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = do_DELETE = do_PATCH = _handle

    def log_message(self, *args: object) -> None:
        pass


def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def handler(status: int = 200, body: object = None, headers: dict[str, str] | None = None):
    return type("Handler", (Recorder,), {"seen": [], "status": status, "headers_out": headers or {},
                                         "body": json.dumps(body if body is not None else {}).encode()})


@pytest.fixture
def target():
    """Where a redirect points: it records whether the key ever arrives."""
    cls = handler(200, {"results": [{"input": "x", "matched": False, "matches": []}]})
    for url in serve(cls):
        yield url, cls


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_the_key_goes_nowhere_else(target, status):
    # Issue item 5: the client followed redirects and sent the bearer key to the target,
    # turning the POST lookup into a GET.
    where, recorder = target
    redirector = handler(status, {}, {"Location": f"{where}/v1/lookup"})
    for url in serve(redirector):
        client = Client(url, "hdb_secret_key")
        with pytest.raises(ServerError, match=f"redirected \\(HTTP {status}\\)") as excinfo:
            client.lookup([{"signal": "pdq", "hash": PDQ, "quality": 100}])
        assert "\n" not in str(excinfo.value)
        assert redirector.seen == [("POST", "/v1/lookup", "Bearer hdb_secret_key")]
    assert recorder.seen == []


def test_the_cli_reports_a_redirect_in_one_line(target):
    where, recorder = target
    for url in serve(handler(302, {}, {"Location": f"{where}/v1/lookup"})):
        result = CliRunner().invoke(cli, ["lookup", f"pdq:{PDQ}", "--server", url, "--api-key", "hdb_k"],
                                    env={"HASHDB_SERVER": None, "HASHDB_API_KEY": None})
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.count("\n") == 1 and "redirected (HTTP 302)" in result.stderr
    assert recorder.seen == []


@pytest.mark.parametrize("body", [{"unexpected": True}, [], {"results": "x"}, {"results": [1]}, {"results": []},
                                  "text"])
@pytest.mark.parametrize("command", [
    ["lookup", f"pdq:{PDQ}"],
    ["submit", f"pdq:{PDQ}", "--pdq-quality", "90", "--label", "glorification"],
    ["export"],
    ["retract", "1"],
    ["feedback", "1", "--agree"],
    ["relabel", "1", "--label", "glorification"],
])
def test_an_answer_of_the_wrong_shape_is_a_one_line_error(body, command):
    # Issue item 5: an unexpected response shape was a traceback (KeyError, TypeError).
    for url in serve(handler(200, body)):
        result = CliRunner().invoke(cli, [*command, "--server", url, "--api-key", "hdb_k"],
                                    env={"HASHDB_SERVER": None, "HASHDB_API_KEY": None})
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "not a hashdb" in result.stderr or "another number of results" in result.stderr


def test_a_feed_entry_of_the_wrong_shape_is_a_one_line_error():
    for url in serve(handler(200, {"changes": [{"seq": 1}], "cursor": "x"})):
        result = CliRunner().invoke(cli, ["export", "--server", url, "--api-key", "hdb_k"],
                                    env={"HASHDB_SERVER": None, "HASHDB_API_KEY": None})
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "not a hashdb feed entry" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/v1", "https://hashdb.example.org/v1/"])
def test_a_base_url_ending_in_v1_is_named_not_a_bare_404(url):
    result = CliRunner().invoke(cli, ["lookup", "md5:" + "0" * 32, "--server", url, "--api-key", "k"],
                                env={"HASHDB_DB": None})
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "without /v1" in result.output
    # A server mounted under a path of its own is fine.
    assert Client("https://example.org/hashdb").base_url == "https://example.org/hashdb"
