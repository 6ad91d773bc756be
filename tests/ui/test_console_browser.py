"""The web console in a real browser (Debian's Chromium via Playwright) against a real
`hashdb serve`: a person's steps, with a screenshot of every page saved for review."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console_data import CHECK_FILE, Seeded, seed
from serverproc import LiveServer, free_port, start_server

ROOT = Path(__file__).resolve().parents[2]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Seeded]]:
    db = tmp_path_factory.mktemp("console") / "console.sqlite"
    seeded = seed(db)
    server = start_server(db, workers=2, env={"HASHDB_WEBHOOK_INTERVAL": "0.5", "HASHDB_WEBHOOK_ALLOW_LOOPBACK": "1"})
    yield server, seeded
    server.stop()


@pytest.fixture
def server(live: tuple[LiveServer, Seeded]) -> LiveServer:
    return live[0]


@pytest.fixture
def data(live: tuple[LiveServer, Seeded]) -> Seeded:
    return live[1]


def open_page(browser: Any, server: LiveServer, viewport: dict[str, int] = DESKTOP) -> Any:
    context = browser.new_context(base_url=server.url, viewport=viewport)
    return context.new_page()


def sign_in(browser: Any, server: LiveServer, key: str, viewport: dict[str, int] = DESKTOP) -> Any:
    page = open_page(browser, server, viewport)
    page.goto("/ui/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/")
    return page


def shot(page: Any, out: Path, name: str) -> None:
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)


def listed_ids(page: Any) -> set[int]:
    return {int(t) for t in page.locator("table tbody td:first-child a").all_inner_texts()}


def lookup(server: LiveServer, key: str, pdq: str) -> dict[str, Any]:
    reply = server.request("GET", f"/v1/lookup?signal=pdq&hash={pdq}", key=key)
    assert reply.status == 200, reply.body
    answer: dict[str, Any] = reply.json()
    return answer


def session_payload(cookie_value: str) -> dict[str, Any]:
    """What Flask's signed cookie carries (readable by anyone holding it: only signed)."""
    body = cookie_value.split(".")[1] if cookie_value.startswith(".") else cookie_value.split(".")[0]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    if cookie_value.startswith("."):
        raw = zlib.decompress(raw)
    payload: dict[str, Any] = json.loads(raw)
    return payload


def test_sign_in_with_a_key_and_sign_out(browser, server, data, screenshots):
    page = open_page(browser, server)
    page.goto("/ui/records?status=active")
    assert "/ui/signin" in page.url
    shot(page, screenshots, "signin")

    page.get_by_label("API key").fill("hdb_000000000000_not-a-real-key")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 401
    key_field = page.get_by_label("API key")
    assert key_field.get_attribute("aria-invalid") == "true"
    assert "unknown API key" in page.locator("#key-error").inner_text()
    shot(page, screenshots, "signin-error")

    key_field.fill(data.keys["alpha"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/records?status=active")  # back where the visitor was going
    assert "alpha" in page.locator("form.who").inner_text()

    [cookie] = [c for c in page.context.cookies() if c["name"] == "hashdb_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert not cookie["secure"]  # plain http here; over https the cookie is Secure
    assert cookie["expires"] > time.time() + 7 * 3600
    payload = session_payload(cookie["value"])
    assert payload["key_id"] == data.key_ids["alpha"]
    assert data.keys["alpha"] not in json.dumps(payload)
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    assert data.keys["alpha"] not in page.content()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/ui/signin")
    assert "Signed out." in page.inner_text("main")
    page.goto("/ui/")
    assert "/ui/signin" in page.url


def test_a_console_page_loads_with_no_failed_request_and_no_console_error(browser, server, data):
    # The browser asked /favicon.ico, a 404 every page showed as an error in its console.
    page = open_page(browser, server)
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("console", lambda m: failed.append(m.text) if m.type == "error" else None)
    page.goto("/ui/signin")
    page.get_by_label("API key").fill(data.keys["alpha"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/")
    page.goto("/ui/records")
    page.wait_for_load_state("networkidle")
    assert failed == []


def test_a_form_without_the_session_csrf_token_is_refused(browser, server, data, screenshots):
    page = sign_in(browser, server, data.keys["admin"])
    page.goto("/ui/admin/keys")
    page.get_by_label("Organisation").fill("forged-org")
    page.locator("form:has(#org) input[name=csrf_token]").evaluate("e => e.value = 'forged'")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Create key").click()
    assert answer.value.status == 400
    assert "security token" in page.inner_text("main")
    shot(page, screenshots, "csrf-refused")
    # The same browser's cookie sent by a request that never saw the page: refused too.
    reply = page.context.request.post(f"{server.url}/ui/admin/keys", form={"org": "forged-org", "role": "admin"})
    assert reply.status == 400
    page.goto("/ui/admin/keys")
    assert "forged-org" not in page.inner_text("table")


def test_each_role_sees_only_what_it_may(browser, server, data, screenshots):
    own, other = data.alpha[1], data.beta[1]
    # Consumer: what a lookup could tell it, nothing more.
    page = sign_in(browser, server, data.keys["gamma"])
    nav = page.locator("nav").inner_text()
    assert "Check" in nav and "Records" not in nav and "Keys" not in nav and "Quarantined" not in nav
    for path in ("/ui/records", "/ui/admin/keys", "/ui/review/quarantined", "/ui/incidents", "/ui/admin/audit"):
        reply = page.goto(path)
        assert reply.status == 403, path
    page.goto(f"/ui/records/{own}")
    text = page.inner_text("main")
    assert "glorification" in text and "Vote" in text
    assert "Hash" not in page.locator("dl.facts").inner_text() and "History" not in text and "Retract" not in text
    shot(page, screenshots, "record-as-consumer")
    assert page.goto(f"/ui/records/{data.quarantined}").status == 404  # as a lookup: not there

    # Contributor: its own organisation's records, whatever their status, acting on those only.
    page = sign_in(browser, server, data.keys["alpha"])
    page.goto("/ui/records")
    assert listed_ids(page) == {*data.alpha, data.quarantined}
    shot(page, screenshots, "records-as-contributor")
    page.goto(f"/ui/records/{own}")
    assert "Retract" in page.inner_text("main") and "History" in page.inner_text("main")
    page.goto(f"/ui/records/{other}")
    text = page.inner_text("main")
    assert "Retract" not in text and "Relabel" not in text and "History" not in text
    assert page.goto(f"/ui/records/{data.quarantined}").status == 200  # its own, held: said so
    assert "Quarantined:" in page.inner_text("main") and "Retract" in page.inner_text("main")
    page.goto("/ui/records?status=quarantined")
    assert listed_ids(page) == {data.quarantined}
    assert page.goto("/ui/admin/keys").status == 403
    page.goto(f"/ui/records?org=beta")
    assert listed_ids(page) <= {*data.alpha, data.quarantined}  # the organisation filter is an admin's

    # Admin: everything, any organisation.
    page = sign_in(browser, server, data.keys["admin"])
    page.goto("/ui/records?org=beta")
    assert listed_ids(page) == set(data.beta)
    page.goto("/ui/records?status=quarantined")
    assert data.quarantined in listed_ids(page)


def test_a_reviewer_releases_a_quarantined_record_and_the_lookup_answer_changes(browser, server, data, screenshots):
    before = lookup(server, data.keys["gamma"], data.quarantined_pdq)
    assert before["matched"] is False

    page = sign_in(browser, server, data.keys["admin"])
    page.get_by_role("navigation").get_by_role("link", name="Quarantined").click()
    row = page.locator("tr", has_text="reported by a member as a news photo")
    assert row.locator("td").nth(3).inner_text() == "manual"
    shot(page, screenshots, "review-quarantined")
    row.get_by_role("link", name=str(data.quarantined)).click()
    shot(page, screenshots, "record-quarantined")

    release = page.locator("form:has(#release-reason)")
    release.get_by_label("Reason").fill("   ")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        release.get_by_role("button", name="Release").click()
    assert answer.value.status == 400
    assert "required" in page.locator("#release-reason-error").inner_text()
    assert page.locator("#release-reason").get_attribute("aria-invalid") == "true"

    release = page.locator("form:has(#release-reason)")
    release.get_by_label("Reason").fill("checked: it is the attacker's video, not a news photo")
    release.get_by_role("button", name="Release").click()
    assert "released" in page.locator(".flash").inner_text()
    assert page.locator("h1 .status").inner_text() == "active"
    assert "quarantine.release" in page.locator("table", has_text="When (UTC)").last.inner_text()

    after = lookup(server, data.keys["gamma"], data.quarantined_pdq)
    assert after["matched"] is True and after["matches"][0]["id"] == data.quarantined


class _Receiver(http.server.BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_an_open_incident_page_shows_a_new_submission_and_its_delivery(browser, server, data, screenshots):
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        page = sign_in(browser, server, data.keys["admin"])
        page.goto("/ui/admin/webhooks")
        # The operator's organisation: a webhook carries hash values, so its organisation must
        # hold a key that may read the feed (partner or admin).
        page.get_by_label("Organisation").fill("operator")
        page.get_by_label("URL").fill(f"http://127.0.0.1:{receiver.server_port}/hook")
        page.get_by_role("button", name="Add webhook").click()
        secret = page.get_by_label("Signing secret").input_value()
        assert re.fullmatch(r"[0-9a-f]{64}", secret)
        shot(page, screenshots, "webhooks")
        page.goto("/ui/admin/webhooks")  # shown once: the page opened again no longer has it
        assert page.get_by_label("Signing secret").count() == 0

        page.goto("/ui/incidents")
        page.get_by_label("Name").fill("123")
        page.get_by_role("button", name="Open incident").click()
        assert "all digits" in page.locator("#name-error").inner_text()
        page.get_by_label("Name").fill("city-attack-test")
        page.get_by_label("Description (optional)").fill("live-streamed attack, shared for the browser test")
        page.get_by_role("button", name="Open incident").click()
        page.wait_for_url(re.compile(r".*/ui/incidents/\d+$"))
        assert "No records." in page.inner_text("main")
        shot(page, screenshots, "incident-open")

        pdq = "f" * 32 + "0" * 32
        reply = server.request("POST", "/v1/hashes", key=data.keys["beta"], body={"items": [
            {"signal": "pdq", "hash": pdq, "quality": 100, "labels": ["attacker_manifesto"],
             "incident": "city-attack-test"}]})
        assert reply.status == 201, reply.body
        [new_id] = reply.json()["results"][0]["ids"]
        # Nobody touches the page: it refreshes itself while the incident is open.
        page.get_by_role("link", name=str(new_id), exact=True).wait_for(timeout=20_000)
        page.locator("td", has_text=re.compile(r"^200$")).first.wait_for(timeout=30_000)
        assert new_id in [json.loads(b)["hash"]["id"] for b in _Receiver.bodies]
        shot(page, screenshots, "incident-with-delivery")

        page.get_by_role("button", name="Close incident").click()
        assert "closed" in page.locator("h1").inner_text()
        assert page.locator("meta[http-equiv=refresh]").count() == 0
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_the_check_page_hashes_a_file_in_the_browser_and_never_uploads_it(browser, server, data, screenshots):
    page = sign_in(browser, server, data.keys["gamma"])
    page.get_by_role("navigation").get_by_role("link", name="Check").click()
    page.get_by_label("Hashes").fill("pdq:not-hex")
    page.get_by_role("button", name="Look up").click()
    assert "line 1" in page.locator("#hashes-error").inner_text()

    sent: list[Any] = []
    page.on("request", lambda r: sent.append(r))
    page.get_by_label("Hashes").fill("")
    page.get_by_label("Hash a file on this computer").set_input_files(str(CHECK_FILE))
    # A locator assertion, not wait_for_function: the console's CSP forbids eval, which
    # wait_for_function's string predicate needs whenever it has to poll (a loaded machine).
    from playwright.sync_api import expect

    expect(page.get_by_label("Hashes")).to_have_value(re.compile("sha256:"), timeout=30_000)
    content = CHECK_FILE.read_bytes()
    expected = f"md5:{hashlib.md5(content).hexdigest()} sha256:{hashlib.sha256(content).hexdigest()}"
    assert page.get_by_label("Hashes").input_value() == expected
    assert sent == []  # choosing and hashing the file sent nothing
    page.get_by_role("button", name="Look up").click()
    page.wait_for_url("**/ui/check")
    [post] = [r for r in sent if r.method == "POST"]
    body = urllib.parse.parse_qs(post.post_data)
    assert body["hashes"] == [expected] and CHECK_FILE.name not in post.post_data
    assert len(post.post_data) < 1000 < len(content)
    assert "matched" in page.inner_text("main .result")
    assert page.get_by_role("link", name=str(data.file_record), exact=True).count() == 1
    shot(page, screenshots, "check-matched")


def test_md5_script_agrees_with_hashlib_on_awkward_lengths(browser, server, data):
    page = sign_in(browser, server, data.keys["gamma"])
    page.goto("/ui/check")
    for n in (0, 1, 55, 56, 63, 64, 65, 1000, 100_003):
        blob = bytes((i * 31 + 7) % 256 for i in range(n))
        got = page.evaluate("b => window.hashdbMd5(new Uint8Array(b).buffer)", list(blob))
        assert got == hashlib.md5(blob).hexdigest(), n


def test_a_revoked_key_ends_its_open_sessions(browser, server, data, screenshots):
    admin = sign_in(browser, server, data.keys["admin"])
    admin.goto("/ui/admin/keys")
    admin.get_by_label("Organisation").fill("short-lived")
    admin.get_by_label("Role").select_option("consumer")
    admin.get_by_role("button", name="Create key").click()
    key = admin.get_by_label("Key", exact=True).input_value()
    assert key.startswith("hdb_")
    shot(admin, screenshots, "keys-created")
    member = sign_in(browser, server, key)
    admin.goto("/ui/admin/keys")
    assert admin.get_by_label("Key", exact=True).count() == 0  # shown once
    admin.get_by_role("button", name=re.compile("Revoke key .* of short-lived")).click()
    assert "revoked" in admin.locator(".flash").inner_text()
    member.goto("/ui/check")
    assert "/ui/signin" in member.url


def test_the_audit_page_finds_a_row_edited_behind_the_apps_back(browser, server, data, screenshots):
    page = sign_in(browser, server, data.keys["admin"])
    page.goto("/ui/admin/audit")
    page.get_by_role("button", name="Verify the chain").click()
    assert "The chain holds" in page.locator("#verdict").inner_text()
    head = page.get_by_label(re.compile("Head of the verified chain")).input_value()
    assert re.fullmatch(r"\d+:[0-9a-f]{64}", head)
    shot(page, screenshots, "audit-ok")

    with sqlite3.connect(server.db, timeout=30) as conn:
        (edited,) = conn.execute("SELECT MIN(id) FROM audit WHERE action = 'hashes.feedback'").fetchone()
        conn.execute("UPDATE audit SET detail = '{\"verdict\": \"agree\"}' WHERE id = ?", (edited,))

    page.get_by_label("Anchors (optional)").fill(head)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Verify the chain").click()
    assert answer.value.status == 409
    verdict = page.locator("#verdict").inner_text()
    assert f"broken at entry {edited}" in verdict and "edited" in verdict
    shot(page, screenshots, "audit-broken")


PAGES = ["/ui/", "/ui/records", "/ui/review/quarantined", "/ui/review/disputed", "/ui/incidents", "/ui/check",
         "/ui/admin/keys", "/ui/admin/webhooks", "/ui/admin/safelist", "/ui/admin/audit"]


def test_every_page_at_desktop_and_phone_width(browser, server, data, screenshots):
    pages = [*PAGES, f"/ui/records/{data.disputed}", f"/ui/records/{data.alpha[1]}"]
    for viewport in (DESKTOP, PHONE):
        page = sign_in(browser, server, data.keys["admin"], viewport)
        incident = page.goto("/ui/incidents") and page.locator("tbody a").first
        extra = [incident.get_attribute("href")] if incident.count() else []
        for path in pages + extra:
            reply = page.goto(path)
            assert reply.status == 200, path
            name = path.strip("/").replace("/", "-") or "ui"
            shot(page, screenshots, f"{name}-{viewport['width']}")
            # Nothing wider than the screen: wide tables scroll inside their own box.
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], path
            assert page.locator("h1").count() == 1
            for field in page.locator("main input:not([type=hidden]), main select, main textarea").all():
                # Every field has a label of its own (for= or wrapping), as assistive tech sees it.
                assert field.evaluate("e => e.labels.length") >= 1, (path, field.evaluate("e => e.outerHTML"))


def test_keyboard_only_sign_in_with_visible_focus(browser, server, data):
    page = open_page(browser, server)
    page.goto("/ui/signin")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")
    page.keyboard.press("Tab")  # the brand link
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "key"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") not in ("none", "")
    page.keyboard.type(data.keys["beta"])
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # skip link
    assert page.evaluate("document.activeElement.id") == "main"


def test_hashdb_demo_prints_a_link_that_signs_in_once(browser, tmp_path, screenshots):
    port = free_port()
    # A session of its own, so that the last resort below stops the demo's server too.
    demo = subprocess.Popen([sys.executable, "-c", "from hashdb.cli import cli; cli()", "demo", "--port", str(port),
                             "--db", str(tmp_path / "demo.sqlite")], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        link = None
        deadline = time.monotonic() + 180
        assert demo.stdout is not None
        while link is None and time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            if line.startswith("web console: "):
                link = line.split(": ", 1)[1].strip()
        assert link and link.startswith(f"http://127.0.0.1:{port}/ui/signin/link?token=")
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        page.goto(link)
        page.wait_for_url("**/ui/")
        assert "demo (admin)" in page.locator("form.who").inner_text()
        page.locator("figure.chart svg").first.wait_for()
        shot(page, screenshots, "demo-dashboard")
        again = browser.new_context().new_page()
        reply = again.goto(link)
        assert reply.status == 401 and "already used" in again.inner_text("main")
    finally:
        # SIGTERM, which the demo turns into its Ctrl-C path itself: a SIGINT is ignored when this
        # suite runs with SIGINT ignored (a background job), and the killed demo then left its
        # server running after the suite.
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        if demo.stdout is not None:
            demo.stdout.close()
