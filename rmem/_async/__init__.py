"""Hand-written async implementation; ``rmem/_sync`` is generated from it (scripts/unasync.py)."""
