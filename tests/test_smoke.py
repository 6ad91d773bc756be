from hashdb.hashing.registry import signal_names


def test_registry_lists_the_product_signals() -> None:
    assert {"pdq", "phash", "dhash", "md5", "sha256"} <= set(signal_names())
