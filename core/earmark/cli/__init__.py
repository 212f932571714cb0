"""The ``earmark`` command line.  One module per sub-command, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import EarmarkError

#: sub-command name → module (relative to this package) exposing ``add_parser(subparsers)`` and ``run(args)``.
COMMANDS = {
    "explain": ".explain",
    "train": ".train",
    "evaluate": ".evaluate",
    "profile": ".profile",
    "bench": ".bench",
    "list": ".listing",
    "scan": ".scan",
}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``earmark: MESSAGE (see `earmark COMMAND --help`)`` and exit code 2."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        text = " ".join(str(message).split())
        self.exit(2, f"earmark: {text} (see `{self.prog} --help`).\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="earmark",
        description="Earmark: see where in time and frequency an audio model looks, and hear it.",
        epilog="Run `earmark COMMAND --help` for the options of one command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(module, __name__).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    try:
        if argv is None:   # a program of its own, not a call from Python: share the cores (earmark.threads)
            from ..threads import apply_thread_budget

            apply_thread_budget(1)
        return int(args.run(args) or 0)
    except EarmarkError as exc:
        print(f"earmark: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("earmark: interrupted; finished results are kept.", file=sys.stderr)
        return 130
    except OSError as exc:   # a full disk, a read-only folder: one sentence, not a traceback
        from ..faults import os_error_sentence
        print(f"earmark: stopped because {os_error_sentence(exc)}; finished results are kept — fix that and run "
              "the same command again.", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
