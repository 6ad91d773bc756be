"""The `hashdb` command: a thin click adapter over HashDB. No hashing, SQL or FAISS here.

One module per group of commands, named as the service's concerns are; `common` holds the click
group and the options and helpers they share; `demo` runs `hashdb demo`. Importing this package
registers every command. Modules here may import anything in `hashdb`; `api` only inside
`hashdb serve`, so that `import hashdb` never pulls in Flask."""

from __future__ import annotations

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
    "HashdbGroup", "cli", "connect", "db_option", "emit", "hashing_service", "json_option", "local_principal",
    "open_service", "org_option", "progress", "server_options", "shown",
    # The command modules, imported for the commands they register.
    "crisis", "hashing", "operations", "partners", "sharing", "trust",
]
