"""query/adjusters."""
