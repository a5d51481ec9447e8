"""The ``rmem`` command.

    rmem server   run an embedded Redis 8.2 with RediSearch until Ctrl-C
    rmem demo     agent processes sharing a session and a memory namespace, checked end to end
    rmem --version

Each subcommand module is imported only when that subcommand runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from rmem import __version__
from rmem._errors import RmemError

__all__ = ["main"]


def _server(args: argparse.Namespace) -> int:
    from rmem import server

    return server.run(args)


def _demo(args: argparse.Namespace) -> int:
    from rmem import demo

    return demo.run(args)


def _parser() -> argparse.ArgumentParser:
    from rmem import demo, server

    parser = argparse.ArgumentParser(
        prog="rmem", description="Redis-native distributed memory for AI agents."
    )
    parser.add_argument("--version", action="version", version=f"rmem {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    subcommands: list[tuple[str, str, Callable[[argparse.ArgumentParser], None], object]] = [
        ("server", "run an embedded Redis 8.2 with RediSearch", server.add_arguments, _server),
        (
            "demo",
            "agent processes sharing a session and a memory namespace",
            demo.add_arguments,
            _demo,
        ),
    ]
    for name, summary, add_arguments, handler in subcommands:
        sub = commands.add_parser(name, help=summary, description=summary)
        add_arguments(sub)
        sub.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``rmem`` command line; return the exit code."""
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except RmemError as exc:
        print(f"rmem: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rmem: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
