"""A child process for the durability and concurrency tests: submits PDQ hashes one per call
and prints "<n> <id> <duplicate>" for each only after add_records has returned (committed).

    python submitter.py sqlite|postgres TARGET START COUNT [--barrier]

COUNT < 0 means forever (until killed). With --barrier the child imports the store, prints
"ready" and waits for a line on stdin before opening it, so several children begin together.
"""

from __future__ import annotations

import sys

from hashdb.store.sql import SQLStore
from hashdb.types import HashValue, NewRecord, Principal


def open_store(kind: str, target: str) -> SQLStore:
    # Import only the store in use: the tests start many of these and count their seconds.
    if kind == "sqlite":
        from hashdb.store.sqlite_store import SQLiteStore

        return SQLiteStore(target)
    from hashdb.store.postgres_store import PostgresStore

    return PostgresStore(target)


def main() -> None:
    kind, target, start, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if sys.argv[5:] == ["--barrier"]:
        # Import the store's module before the barrier, so only opening and writing race.
        __import__("hashdb.store.sqlite_store" if kind == "sqlite" else "hashdb.store.postgres_store")
        print("ready", flush=True)
        sys.stdin.readline()
    store = open_store(kind, target)
    org = store.ensure_org("durable")
    actor = Principal(org.id, org.name, "contributor")
    n = start
    while count < 0 or n < start + count:
        outcome = store.add_records([NewRecord(HashValue("pdq", f"{n:064x}", 90), "image", ("terrorism",))],
                                    actor)[0]
        print(n, outcome.id, int(outcome.duplicate), flush=True)
        n += 1
    store.close()


if __name__ == "__main__":
    main()
