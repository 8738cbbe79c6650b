"""storage/ducklake."""
