"""Signals: raised at once outside a deferred section, noted inside it, forwarded to subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from lorabench import interrupts
from lorabench.errors import Interrupted

# A child that, like a run subprocess, stops at its next step when told (and says which signal it got).
CHILD = """
import signal, sys, time
got = []
signal.signal(signal.SIGTERM, lambda n, f: got.append(n))
signal.signal(signal.SIGINT, lambda n, f: got.append(n))
print("ready", flush=True)
while not got:
    time.sleep(0.01)
sys.exit(128 + got[0])
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_outside_a_deferred_section_raises_interrupted_with_its_status(signum: int) -> None:
    with interrupts.signals_handled(), pytest.raises(Interrupted) as caught:
        os.kill(os.getpid(), signum)
        time.sleep(1)
    assert caught.value.signum == signum and caught.value.exit_status == 128 + signum
    assert signal.getsignal(signum) is not interrupts._handler  # restored


def test_a_deferred_signal_waits_for_the_next_check_and_a_second_one_forces() -> None:
    with interrupts.signals_handled(), interrupts.deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # handler ran: nothing raised
        assert interrupts.received() == signal.SIGTERM
        with pytest.raises(Interrupted) as caught:
            interrupts.check()
        assert caught.value.exit_status == 143
        with pytest.raises(Interrupted):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)


def test_a_run_subprocess_ignores_repeats_inside_nested_sections() -> None:
    with interrupts.signals_handled(), interrupts.deferred(force_on_repeat=False), interrupts.deferred():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        with pytest.raises(Interrupted) as caught:
            interrupts.check()
        assert caught.value.signum == signal.SIGINT


def test_an_ignored_signal_stays_ignored() -> None:
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with interrupts.signals_handled():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_stop_child_forwards_the_signal_and_waits() -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    interrupts.stop_child(proc, signal.SIGTERM, grace_s=30)
    assert proc.returncode == 128 + signal.SIGTERM  # it stopped itself: forwarded, not killed


def test_stop_child_kills_past_the_grace_period() -> None:
    stubborn = (
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", stubborn], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    start = time.monotonic()
    interrupts.stop_child(proc, signal.SIGTERM, grace_s=0.5)
    assert proc.returncode == -signal.SIGKILL and time.monotonic() - start < 10
