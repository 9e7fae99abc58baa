"""SIGINT, SIGTERM and SIGHUP handled one way in ``run``, ``sweep`` and ``infer``.

:func:`signals_handled` installs one handler for the three signals. Outside a :func:`deferred` section the handler
raises :class:`~lorabench.errors.Interrupted` at once (plain Python code: reading files, waiting for a subprocess).
Inside one -- training and inference, where the CPU memory tracker's PyTorch profiler runs and Python code is
called back from native code (autograd, profiler callbacks) -- it only notes the signal; the loop calls
:func:`check` between micro-batches and stops there, so the profiler is stopped outside of native callbacks (raising
from inside one ends in a segmentation fault). A second signal inside a deferred section stops at once when the
section allows it (an interactive ``lorabench run``: Ctrl-C twice), else it is ignored (a run subprocess: its
parent forwards the signal it got, and a terminal's Ctrl-C reaches both).

:func:`stop_child` forwards a signal to a subprocess and waits for it (then kills it past a grace period), so a
stopped sweep leaves no run holding a GPU.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from lorabench.errors import Interrupted

__all__ = [
    "HANDLED_SIGNALS",
    "STOP_GRACE_S",
    "check",
    "deferred",
    "received",
    "signals_handled",
    "stop_child",
]

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOP_GRACE_S = 60.0  # how long a run subprocess gets to stop at its next step and write its record


class _State:
    received: int | None = None
    depth = 0
    force_on_repeat = True


_state = _State()


def _handler(signum: int, frame: FrameType | None) -> None:
    first = _state.received is None
    if first:
        _state.received = signum
    if _state.depth > 0 and (first or not _state.force_on_repeat):
        return  # stopped at the next check(), outside any native callback
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_handled() -> Iterator[None]:
    """Install the handler for SIGINT, SIGTERM and SIGHUP (main thread only; elsewhere a no-op), restore after.

    A signal that the process inherited as ignored (``nohup``, a background job's SIGINT) stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    for signum in HANDLED_SIGNALS:
        current = signal.getsignal(signum)
        if current == signal.SIG_IGN:
            continue
        previous[signum] = current
        signal.signal(signum, _handler)
    _state.received = None
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def deferred(force_on_repeat: bool = True) -> Iterator[None]:
    """Within this block a signal is only noted; :func:`check` raises it at the next safe point.

    Args:
        force_on_repeat: Whether a second signal raises at once (else it is ignored).
    """
    saved = _state.force_on_repeat
    # Nested sections keep the stricter rule: a run subprocess's "ignore repeats" holds inside run_training's section.
    _state.force_on_repeat = force_on_repeat and (saved or _state.depth == 0)
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        _state.force_on_repeat = saved


def received() -> int | None:
    """The first signal received since :func:`signals_handled` began (None: none)."""
    return _state.received


def check() -> None:
    """Raise :class:`~lorabench.errors.Interrupted` when a signal was received (call between steps).

    Raises:
        Interrupted: A handled signal arrived.
    """
    if _state.received is not None:
        raise Interrupted(_state.received)


def stop_child(proc: subprocess.Popen[Any], signum: int | None, grace_s: float = STOP_GRACE_S) -> None:
    """Stop a subprocess: forward ``signum`` and wait up to ``grace_s``, then kill it (at once when None).

    A second signal while waiting kills the subprocess at once.
    """
    if proc.poll() is not None:
        return
    if signum is not None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)
        try:
            proc.communicate(timeout=grace_s)  # drains its pipes, so a chatty subprocess cannot block on them
            return
        except subprocess.TimeoutExpired:
            pass
        except Interrupted:
            pass
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.communicate()
