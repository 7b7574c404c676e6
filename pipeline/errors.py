"""Expected failures, their exit codes, and the wrapper every entry point's ``main`` runs under.

An expected error (bad config, bad data, an unreachable tracking store, a full disk) is one line on
stderr naming the problem and the fix, and a documented exit code; anything else is a bug and keeps
its traceback. ``--debug`` on the command line or ``PIPELINE_DEBUG=1`` shows the traceback always.

| code | meaning |
|---|---|
| 0 | done |
| 1 | unexpected error (a bug): the traceback is printed |
| 2 | bad input: config, data, regime, or a missing input file |
| 3 | tracking store unreachable or broken |
| 4 | a file cannot be written (disk full, read-only) or accessed (no permission) |
| 130 | interrupted (Ctrl-C) |
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from typing import NoReturn

DEBUG_ENV = "PIPELINE_DEBUG"
BUG, BAD_INPUT, TRACKING, WRITE, INTERRUPTED = 1, 2, 3, 4, 130
WRITE_ERRNOS = {
    errno.ENOSPC: "free space on that disk",
    errno.EDQUOT: "free space within your disk quota",
    errno.EROFS: "the file system is read-only: run from a writable copy",
    errno.EACCES: "make it writable for you",
    errno.EPERM: "make it writable for you",
}


class PipelineError(Exception):
    """An expected failure: its message names the problem and the fix."""

    exit_code = BUG


class BadInput(PipelineError, ValueError):
    exit_code = BAD_INPUT


class ConfigError(BadInput):
    """A config value is of the wrong type, out of range or unknown; the message names key, value and fix."""


class MissingInput(PipelineError, FileNotFoundError):
    """A file an earlier stage writes (or the user provides) is not there; the message names the stage to run."""

    exit_code = BAD_INPUT


class TrackingError(PipelineError, RuntimeError):
    exit_code = TRACKING


class WriteError(PipelineError, OSError):
    exit_code = WRITE


def write_error(path: object, err: OSError) -> WriteError | OSError:
    """``err`` raised while writing ``path`` as a WriteError naming the path and the fix, if it is one."""
    fix = WRITE_ERRNOS.get(err.errno)
    if fix is None:
        return err
    return WriteError(f"cannot write {path}: {os.strerror(err.errno)}; {fix}, then rerun.")


def one_line(err: BaseException) -> tuple[int, str] | None:
    """(exit code, message) of an expected error; None for a bug."""
    from hydra.errors import HydraException

    if isinstance(err, PipelineError):
        return err.exit_code, str(err)
    if isinstance(err, OSError) and err.errno in (errno.EACCES, errno.EPERM):  # reading as much as writing
        return WRITE, f"cannot access {err.filename or 'a file'}: {os.strerror(err.errno)}; check its permissions."
    if isinstance(err, OSError) and err.errno in WRITE_ERRNOS:
        return WRITE, str(write_error(err.filename or "a file", err))
    if isinstance(err, FileNotFoundError):
        return BAD_INPUT, str(err)
    if isinstance(err, HydraException):  # a bad override or a missing config file, as Hydra words it
        first, *_ = str(err).strip().splitlines() or [type(err).__name__]
        return BAD_INPUT, f"{first.strip()} (check the override against conf/)"
    return None


def restore_hint() -> str:
    stage = os.environ.get("DVC_STAGE")
    if not stage:
        return ""
    return (f"\nunder dvc repro: `dvc checkout {stage}` restores the stage's last good outputs where DVC removed them "
            "(`git checkout -- reports` the committed reports).")


def cli(main: Callable[[], int | None]) -> NoReturn:
    """Run an entry point's ``main`` and exit: its status, or one line and the documented code on an expected error."""
    debug = "--debug" in sys.argv[1:] or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    if "--debug" in sys.argv[1:]:
        sys.argv.remove("--debug")
    try:
        status = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(INTERRUPTED)
    except Exception as err:
        known = None if debug else one_line(err)
        if known is None:
            raise
        code, message = known
        lines = [" ".join(line.split()) for line in message.splitlines() if line.strip()]  # one per problem
        print(f"error: {chr(10).join(lines)}{restore_hint()}", file=sys.stderr)
        sys.exit(code)
    sys.exit(status or 0)


def exit_now(err: PipelineError) -> NoReturn:
    """Stop the process from inside a framework that only warns about exceptions (Hydra's callbacks)."""
    print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
    raise SystemExit(err.exit_code)
