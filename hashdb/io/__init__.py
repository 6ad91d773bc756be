"""What crosses the edges as text: `inputs` turns command-line arguments and hash files into
things to hash or look up, `output` renders domain values as the JSON shapes of PRODUCT.md that
the CLI's --json and the HTTP API share, `te_format` reads and writes python-threatexchange's
local-file lines. Parsing and rendering only; modules here may import
`types`, `errors`, `hashing` and `trust.policy`; never `store`, `index`, `service`, `cli` or `api`."""
