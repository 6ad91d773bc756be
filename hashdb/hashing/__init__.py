"""Local hashing: signals, media decoding, video sampling. Never imports store, index or api."""
