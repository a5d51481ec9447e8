# Generated from rmem/_async/__init__.py by scripts/unasync.py: edit that file, not this one.
"""Sync implementation, generated from ``rmem/_async`` by scripts/unasync.py."""
