"""Adapters that let agent frameworks keep their state in rmem.

Each adapter is a module of its own and needs its install extra, named by the error raised
when it is imported without it (for example ``pip install 'rmem[langgraph]'`` for
:mod:`rmem.integrations.langgraph`).
"""
