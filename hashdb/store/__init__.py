"""Persistence: the store is the truth; indexes are derived from it."""
