"""query/analysis."""
