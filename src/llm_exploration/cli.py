"""What every ``python -m llm_exploration.<command>`` shares: bad input is one line on stderr and
exit status 2; a traceback appears only for a real bug, or for any error with ``--debug``.

Bad input is an :class:`~llm_exploration.settings.InputError` (a setting out of range, an unknown
post or profile, a missing file, an unreachable model): :func:`run` prints it as
``prog: error: <message>``. Usage mistakes that argparse finds are printed the same way by
:class:`ArgumentParser`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .settings import InputError

DEBUG_FLAG = "--debug"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a ``--debug`` flag (on every subcommand) and one-line usage errors."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(DEBUG_FLAG, action="store_true",
                          help="show the full traceback of any error")

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def one_line(err: BaseException) -> str:
    """The error's message with its line breaks and runs of spaces folded to single spaces."""
    return " ".join(str(err).split())


def run(main: Callable[[list[str]], int], prog: str, argv: Sequence[str] | None = None) -> int:
    """Call ``main(argv)``; print bad input as one line on stderr and return 2.

    With ``--debug`` among the arguments the error propagates with its traceback; errors that
    are not :class:`InputError` always do (they are bugs)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return main(args)
    except InputError as err:
        if DEBUG_FLAG in args:
            raise
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        return 2
