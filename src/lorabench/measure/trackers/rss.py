"""Peak resident set size of the process: all its memory in RAM (Python, libraries, tensors), not tensor memory.

On Linux the peak is ``VmHWM`` in ``/proc/self/status``; writing ``5`` to ``/proc/self/clear_refs`` resets it to
the current RSS, so the peak covers the run only. Elsewhere ``resource.getrusage().ru_maxrss`` gives the peak over
the process's whole life (KiB on Linux, bytes on macOS).
"""

from __future__ import annotations

import sys
from pathlib import Path

from lorabench.measure.trackers.measured import Measured

__all__ = ["PeakRss"]

_KIB = 1024


class PeakRss:
    """Peak RSS of this process over a run, labelled as process RSS.

    Args:
        status_path: The ``/proc`` status file to read ``VmHWM`` from.
        clear_refs_path: The ``/proc`` file that resets the peak.
    """

    def __init__(
        self,
        status_path: Path = Path("/proc/self/status"),
        clear_refs_path: Path = Path("/proc/self/clear_refs"),
    ) -> None:
        self._status_path = status_path
        self._clear_refs_path = clear_refs_path
        self.reset_at_start = False

    def start(self) -> None:
        """Reset the kernel's peak RSS to the current RSS, where the kernel allows it."""
        try:
            self._clear_refs_path.write_text("5")
        except OSError:
            self.reset_at_start = False
        else:
            self.reset_at_start = True

    def _vm_hwm(self) -> int | None:
        try:
            text = self._status_path.read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                fields = line.split()
                if len(fields) >= 3 and fields[1].isdigit() and fields[2] == "kB":
                    return int(fields[1]) * _KIB
        return None

    def read(self) -> Measured:
        """The peak RSS in bytes and the counter it came from (and over what span)."""
        hwm = self._vm_hwm()
        if hwm is not None:
            span = "since start (reset via /proc/self/clear_refs)" if self.reset_at_start else "process lifetime"
            return Measured(hwm, "bytes", f"process RSS: /proc/self/status VmHWM, {span}")
        try:
            import resource
        except ImportError:
            return Measured.unknown("bytes", "neither /proc/self/status nor the resource module is available")
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        scale = 1 if sys.platform == "darwin" else _KIB
        return Measured(maxrss * scale, "bytes", "process RSS: resource.getrusage ru_maxrss, process lifetime")
