"""Near-duplicate indexes over binary hashes, derived from the store and rebuilt from it.

`base.HashIndex` is the seam the service uses; `registry.make_index` picks an implementation
(FAISS with multi-index hashing, or the linear oracle); `indexset.IndexSet` keeps one index per
signal in step with the store's change log. `_mih_kernel.c` (optional, built by `pip install`)
runs the multi-index search in C; without it `mih` and `_scan` give the same answers. Modules
here may import `types`, `errors`, `config`, `bits` and (`indexset` only) the `store` protocol;
never `hashing` or anything above them.
"""
