"""`python -m hashdb.cli`: the `hashdb` command where its entry point is not on PATH."""

from hashdb.cli import main

main()
