"""Webhooks go to public addresses only: checked when one is registered and again at every
delivery, after resolving the host (a name may point somewhere else by then: DNS rebinding).
Loopback only when the operator allows it; the tests' receivers need that."""

from __future__ import annotations

import ipaddress

import pytest

from hashdb.errors import InvalidInput
from hashdb.trust import addresses
from hashdb.types import HashValue, Submission
from support import principal, subscriber
from test_webhooks import Receiver

REFUSED = [
    ("https://169.254.169.254/latest/meta-data/", "link-local"),  # a cloud metadata service
    ("https://[fd00:ec2::254]/", "private"),  # the same, over IPv6
    ("https://[::ffff:169.254.169.254]/", "link-local"),  # IPv4-mapped IPv6
    ("https://[64:ff9b::a9fe:a9fe]/", "link-local"),  # NAT64 to 169.254.169.254
    ("https://[2002:a9fe:a9fe::1]/", "link-local"),  # 6to4 of 169.254.169.254
    ("https://[fe80::1]/", "link-local"),
    ("https://10.0.0.1/hook", "private"),
    ("https://172.16.5.4/hook", "private"),
    ("https://192.168.1.1/hook", "private"),
    ("https://100.64.0.1/hook", "not public"),  # carrier-grade NAT
    ("https://localhost:22/", "loopback"),
    ("https://127.0.0.1/hook", "loopback"),
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("https://[::1]/", "loopback"),
    ("https://0.0.0.0/", "unspecified"),
    ("https://[::]/", "unspecified"),
    ("https://224.0.0.1/", "multicast"),
]


@pytest.mark.parametrize("url, problem", REFUSED)
def test_webhooks_to_internal_addresses_are_refused_at_registration(make_service, url, problem):
    # Issue item 6: all of these were accepted.
    service = make_service(webhook_allow_loopback=False)
    admin = principal(service, "ops", "admin")
    subscriber(service, "subscriber")
    article = "an" if problem == "unspecified" else "a"  # found in trial: "a unspecified address"
    with pytest.raises(InvalidInput, match=f", {article} {problem} address"):
        service.add_webhook("subscriber", url, admin)
    assert service.list_webhooks(admin) == []


@pytest.mark.parametrize("url", ["https://example.com:0/x", "https://93.184.216.34:0/hook", "http://127.0.0.1:0/hook"])
def test_port_0_is_refused_at_registration(make_service, url):
    # Found in trial: accepted, and then delivered to the scheme's default port unasked.
    service = make_service(webhook_allow_loopback=True)
    admin = principal(service, "ops", "admin")
    subscriber(service, "subscriber")
    with pytest.raises(InvalidInput, match="port 0, which no server listens on"):
        service.add_webhook("subscriber", url, admin)
    assert service.list_webhooks(admin) == []


def test_public_addresses_and_names_not_resolvable_yet_are_accepted(make_service):
    service = make_service(webhook_allow_loopback=False)
    admin = principal(service, "ops", "admin")
    subscriber(service, "subscriber")
    for url in ("https://93.184.216.34/hook", "https://[2606:4700::1111]/hook", "https://hooks.example.invalid/x"):
        service.add_webhook("subscriber", url, admin)
    assert len(service.list_webhooks(admin)) == 3


def test_the_operator_may_allow_loopback_and_nothing_else(make_service):
    service = make_service(webhook_allow_loopback=True)
    admin = principal(service, "ops", "admin")
    subscriber(service, "subscriber")
    service.add_webhook("subscriber", "http://127.0.0.1:9/hook", admin)
    service.add_webhook("subscriber", "https://[::ffff:127.0.0.1]/hook", admin)
    for url, problem in REFUSED:
        if problem not in ("loopback",):
            with pytest.raises(InvalidInput, match=problem):
                service.add_webhook("subscriber", url, admin)


@pytest.mark.parametrize("text, problem", [
    ("::ffff:10.1.2.3", "private"), ("::ffff:8.8.8.8", None), ("8.8.8.8", None), ("fc00::1", "private"),
    ("192.0.2.1", "private"), ("::ffff:127.0.0.1", "loopback"), ("2001:db8::1", "private"),
    ("2606:4700::1111", None), ("64:ff9b::808:808", None),
])
def test_address_rules(text, problem):
    found = addresses.refusal(ipaddress.ip_address(text), allow_loopback=False)
    assert (found is None) if problem is None else (problem in found)


def test_every_delivery_checks_where_the_host_points_now(make_service):
    # Issue item 6: nothing was checked at send time, so a name that resolved to a public
    # address at registration and to a private one later (DNS rebinding) was delivered to.
    # The stored URL stands for such a name: `localhost` now resolves to loopback.
    service = make_service(webhook_allow_loopback=False)
    receiver = Receiver([200])
    try:
        admin = principal(service, "ops", "admin")
        contributor = principal(service, "a", "contributor")
        org = subscriber(service, "subscriber")
        service.open_incident("attack-1", admin, "live stream")
        port = receiver.url.rsplit(":", 1)[1].split("/")[0]
        service.store.add_webhook(org.org_id, f"http://localhost:{port}/hook", "salt", admin)
        service.submit([Submission("x", ("attacker_manifesto",), (HashValue("md5", "7" * 32),),
                                   incident="attack-1")], contributor)
        done = service.deliver_webhooks()
        assert (done.attempted, done.delivered) == (1, 0)
        assert receiver.requests == []
        [attempt] = service.delivery_log(admin)
        assert attempt.status_code is None
        assert attempt.error.startswith("refused:") and "loopback" in attempt.error
    finally:
        receiver.close()
