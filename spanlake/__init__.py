"""Spanlake: a distributed tracing backend over DuckDB and DuckLake."""

__version__ = "0.1.0"
