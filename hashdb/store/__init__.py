"""Persistence: the `HashStore` protocol (`base`), the SQL both stores share (`sql`, `keys_sql`,
`parts_sql`, `trust_sql`, `mirror_sql`, `console_sql`, `rows`), the SQLite store (the embedded default) and the PostgreSQL store, each
with its migrations. The store is the truth; indexes are derived from it. Modules here may
import `types`, `errors` and `config`; never `hashing`, `index` or anything above them."""
