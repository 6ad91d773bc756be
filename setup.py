"""The compiled parts: PDQ's numeric core (hashdb/hashing/_pdq_kernel.c) and the multi-index
search loop (hashdb/index/_mih_kernel.c).

Both optional: if no C compiler is found the install goes on and hashdb uses its numpy code for
the same work (hashdb/hashing/pdq_core.py; mih.py with _scan.py), same answers, slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "hashdb.hashing._pdq_kernel",
            ["hashdb/hashing/_pdq_kernel.c"],
            # No fused multiply-add and no fast-math: the C++ rounds every product and sum.
            extra_compile_args=["-O3", "-ffp-contract=off", "-fno-fast-math", "-std=c99"],
            optional=True,
        ),
        # A module of its own, not a function in _pdq_kernel: hashdb.index does not import
        # hashdb.hashing (the two are peers below the service), and an index-only install
        # problem should not cost the PDQ kernel, nor the other way round.
        Extension(
            "hashdb.index._mih_kernel",
            ["hashdb/index/_mih_kernel.c"],
            extra_compile_args=["-O3", "-std=c99"],
            optional=True,
        ),
    ]
)
