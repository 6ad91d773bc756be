"""What partners use to take the list away: feed `formats` (JSONL, CSV, ThreatExchange lines),
`mirror` (another hashdb's change feed applied to a local store: `hashdb import` and `hashdb
sync`), `client` (the HTTP API from Python, stdlib only) and `pytx` (hashdb as an exchange of
python-threatexchange and HMA; the one module that imports pytx). Modules here may import the
service and everything below it (`io`, `trust`, `hashing`, `store`, core); never `cli` or `api`."""
