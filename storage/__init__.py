"""Storage: the Store contracts and their backends (DuckLake, memory)."""
