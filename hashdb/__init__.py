"""hashdb: a perceptual hash-sharing database. Importing it never pulls in Flask or FAISS."""

__version__ = "0.1.0"
