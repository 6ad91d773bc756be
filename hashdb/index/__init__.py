"""Near-duplicate indexes over binary hashes, derived from the store and rebuilt from it.

`base.HashIndex` is the seam the service uses; `registry.make_index` picks an implementation.
"""
