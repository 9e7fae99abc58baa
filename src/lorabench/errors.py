"""The exception hierarchy: one root, one subclass per kind of problem.

Every error a user can cause (a bad flag, a malformed file, an unknown model) is a
:class:`LorabenchError`. The CLI prints its message as one line on stderr and exits with the error's
:attr:`~LorabenchError.exit_status`; anything else is a bug and keeps its traceback.

Exit statuses (documented in the README's Guarantees):

- 2 (:data:`EXIT_BAD_INPUT`): bad input -- a flag, a file, a field;
- 74 (:data:`EXIT_ENVIRONMENT`, ``EX_IOERR`` of sysexits.h): the environment failed -- disk or quota full, a
  read-only filesystem, a file over the size limit, an I/O error (:class:`EnvironmentFailure`);
- 128 + the signal's number: interrupted (:class:`Interrupted`): 130 for SIGINT (Ctrl-C), 143 for SIGTERM, 129 for
  SIGHUP.

``lorabench run`` also exits 1 for a run recorded as ``failed`` and 3 for one recorded as ``oom``.
"""

from __future__ import annotations

import errno
import re
import signal

__all__ = [
    "ENVIRONMENT_ERRNOS",
    "EXIT_BAD_INPUT",
    "EXIT_ENVIRONMENT",
    "CatalogError",
    "ConfigError",
    "DataError",
    "EnvironmentFailure",
    "Interrupted",
    "LorabenchError",
    "MeasurementError",
    "ModelError",
    "is_environment_failure",
    "signal_name",
]

EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 74

# What the machine, not the input, is to blame for: no space, no quota, read-only, too large for the limit, I/O.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO})


class LorabenchError(Exception):
    """Root of every expected lorabench error; its message is meant for the user."""

    exit_status: int = EXIT_BAD_INPUT


class ConfigError(LorabenchError):
    """A run spec, config file or command-line value is invalid."""


class ModelError(LorabenchError):
    """A model cannot be resolved, or a spec does not fit its architecture."""


class DataError(LorabenchError):
    """A dataset file is missing, empty or malformed."""


class CatalogError(LorabenchError):
    """A catalog file (architectures, GPUs, prices) is invalid or lacks an entry."""


class MeasurementError(LorabenchError):
    """A measurement could not be taken or recorded."""


class EnvironmentFailure(LorabenchError):
    """The machine failed the command: disk or quota full, read-only filesystem, file size limit, I/O error."""

    exit_status = EXIT_ENVIRONMENT


def signal_name(signum: int) -> str:
    """``SIGINT`` for 2, ... (``signal 99`` for a number Python does not name)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(LorabenchError):
    """The command was stopped by a signal (SIGINT, SIGTERM, SIGHUP); exit status 128 + the signal's number.

    Args:
        signum: The signal received.
        message: What was stopped and what to do (default: ``interrupted by SIGNAME``).
    """

    def __init__(self, signum: int, message: str | None = None) -> None:
        super().__init__(message or f"interrupted by {signal_name(signum)}")
        self.signum = signum
        self.exit_status = 128 + signum


def is_environment_failure(exc: BaseException) -> bool:
    """True for an error the environment is to blame for (see :data:`ENVIRONMENT_ERRNOS`).

    An OSError by its errno; another error (safetensors' Rust writer) by the ``(os error N)`` in its message.
    """
    if isinstance(exc, OSError):
        return exc.errno in ENVIRONMENT_ERRNOS
    found = re.search(r"\(os error (\d+)\)", str(exc))
    return found is not None and int(found.group(1)) in ENVIRONMENT_ERRNOS
