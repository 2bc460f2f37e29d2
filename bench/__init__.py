"""Benchmarks: `python -m bench [NAME ...]` (`make bench`); each prints one `name key=value ...` line."""
