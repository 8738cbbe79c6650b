"""query/api."""
