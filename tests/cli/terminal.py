"""Run a command with its stdout on a pseudo-terminal (so progress bars are drawn) and return what it drew."""

from __future__ import annotations

import os
import pty
import subprocess
from collections.abc import Mapping, Sequence


def on_a_terminal(command: Sequence[str], env: Mapping[str, str], timeout_s: float = 300) -> str:
    """Run ``command`` with stdout on a pty; assert it exits 0 and return its terminal output."""
    leader, follower = pty.openpty()
    child = subprocess.Popen(list(command), stdout=follower, stderr=subprocess.PIPE, env=dict(env))
    os.close(follower)
    chunks = []
    while True:  # read while it runs: a full terminal buffer would block the child
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    _, stderr = child.communicate(timeout=timeout_s)
    assert child.returncode == 0, stderr.decode(errors="replace")[-2000:]
    return b"".join(chunks).decode(errors="replace")
