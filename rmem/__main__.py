"""``python -m rmem``: the same as the ``rmem`` command."""

from rmem.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
