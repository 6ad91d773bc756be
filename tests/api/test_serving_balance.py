"""Kept-alive connections are shared evenly between the workers of `hashdb serve`
(hashdb/api/balance.py): the counts file on its own, then a real server with two workers."""

from __future__ import annotations

import http.client
import os
from pathlib import Path

import pytest

from hashdb.api.balance import ConnectionShares
from serverproc import start_server
from support import empty_database


def test_a_worker_holding_more_than_another_does_not_accept(tmp_path):
    one, two = ConnectionShares(tmp_path / "c"), ConnectionShares(tmp_path / "c")
    one.claim(101)
    two.claim(102)
    one.publish(3)
    two.publish(2)
    assert not one.may_accept(3)
    assert two.may_accept(2)
    two.publish(3)
    assert one.may_accept(3) and two.may_accept(3)  # a tie: both accept


def test_a_released_worker_holds_nobody_back(tmp_path):
    one, two = ConnectionShares(tmp_path / "c"), ConnectionShares(tmp_path / "c")
    one.claim(101)
    two.claim(102)
    two.publish(0)
    assert not one.may_accept(5)
    two.release(102)
    assert one.may_accept(5)
    # The freed slot is taken again by the next worker, starting from no connections.
    three = ConnectionShares(tmp_path / "c")
    three.claim(103)
    assert not one.may_accept(5)


def _sockets_by_worker(server_pid: int, port: int) -> list[int]:
    """Established connections on `port` held by each worker of the server, by /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # ESTABLISHED
                inodes.add(fields[9])
    counts = []
    for child in Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split():
        fds = Path(f"/proc/{child}/fd")
        held = 0
        for fd in fds.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                held += 1
        counts.append(held)
    return counts


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads Linux's /proc")
def test_kept_alive_connections_are_shared_evenly_between_workers(tmp_path):
    server = start_server(empty_database(tmp_path / "db.sqlite"), workers=2, env={"HASHDB_RATE_LIMIT": "0"})
    connections = []
    try:
        for _ in range(8):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            connections.append(connection)  # kept alive, one after the other
        counts = _sockets_by_worker(server.process.pid, server.port)
        assert len(counts) == 2 and sum(counts) == 8, counts
        assert max(counts) - min(counts) <= 1, counts
    finally:
        for connection in connections:
            connection.close()
        server.stop()


def test_one_accept_takes_every_waiting_connection_while_the_worker_may_take_them():
    # A burst (a client pool opening many connections at once) is taken in one pass, not one
    # connection a pass of the loop; the fair share and the connection limit still stop it.
    import socket
    from types import SimpleNamespace

    from gunicorn.config import Config

    from hashdb.api.worker import HashdbWorker

    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    clients = [socket.create_connection(listener.getsockname(), timeout=5) for _ in range(6)]
    taken: list[object] = []
    try:
        worker = SimpleNamespace(nr_conns=0, worker_connections=4, shares=None, cfg=Config(),
                                 _gather=taken.append)
        worker._fair = lambda: True
        HashdbWorker.accept(worker, listener)
        assert worker.nr_conns == len(taken) == 4  # up to the limit
        worker.worker_connections = 10
        worker._fair = lambda: worker.nr_conns < 5  # another worker holds 5
        HashdbWorker.accept(worker, listener)
        assert worker.nr_conns == len(taken) == 5
        HashdbWorker.accept(worker, listener)
        assert len(taken) == 5
        worker._fair = lambda: True
        HashdbWorker.accept(worker, listener)  # the last one, then none waiting: no error
        assert worker.nr_conns == len(taken) == 6
    finally:
        for conn in taken:
            conn.sock.close()  # type: ignore[attr-defined]
        for client in clients:
            client.close()
        listener.close()
