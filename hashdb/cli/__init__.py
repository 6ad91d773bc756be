"""The `hashdb` command: a thin click adapter over HashDB. No hashing, SQL or FAISS here.

One module per group of commands, named as the service's concerns are; `common` holds the click
group and the options and helpers they share; `demo` runs `hashdb demo`. Importing this package
registers every command. Modules here may import anything in `hashdb`; `api` only inside
`hashdb serve`, so that `import hashdb` never pulls in Flask. `main` is the `hashdb` program."""

from __future__ import annotations

import gc

from hashdb.cli import crisis, hashing, operations, partners, sharing, trust
from hashdb.cli.common import (
    HashdbGroup,
    cli,
    connect,
    db_option,
    emit,
    hashing_service,
    json_option,
    local_principal,
    open_service,
    org_option,
    progress,
    server_options,
    shown,
)

__all__ = [
    "HashdbGroup", "cli", "main", "connect", "db_option", "emit", "hashing_service", "json_option", "local_principal",
    "open_service", "org_option", "progress", "server_options", "shown",
    # The command modules, imported for the commands they register.
    "crisis", "hashing", "operations", "partners", "sharing", "trust",
]


def main() -> None:
    """The `hashdb` program: runs `cli`, and after a command that succeeded leaves without the
    interpreter's collections at exit. Those scan every object numpy, OpenCV and hashdb made
    (20-30 ms of the ~250 a `hashdb hash photo.jpg` takes, paid after a folder's last file) to
    free memory the process is about to hand back whole. What is garbage once the command is
    done is collected first, so the database connection closes (and SQLite removes its -wal
    file) as before. A failed command exits as usual: its exception still holds the command's
    objects, which only those collections free."""
    try:
        cli()
    except SystemExit as exit:
        if not exit.code:
            gc.collect()
            gc.freeze()
        raise
