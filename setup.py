"""The one compiled part: PDQ's numeric core (hashdb/hashing/_pdq_kernel.c).

Optional: if no C compiler is found the install goes on and hashdb uses its numpy port of
the same arithmetic (hashdb/hashing/pdq_core.py), which gives the same hashes, slower.
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
        )
    ]
)
