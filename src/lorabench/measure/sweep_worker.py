"""Process entry point for one sweep worker: ``python -m lorabench.measure.sweep_worker MATRIX --out DIR``.

``lorabench sweep --workers N`` starts N of these (an argument list, never a shell string). Each expands the same
matrix, then claims runs through the sweep's ledger and runs them one by one (each in its own subprocess) until
none is left. Exit status: 0 when every run is done, 2 on bad input, 74 when the disk refuses a write, 128 + N when
signal N stopped it (forwarded to its run, which records itself as ``interrupted``); one line on stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from lorabench.errors import LorabenchError
from lorabench.interrupts import signals_handled

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Work on the sweep named by the arguments until every run is done."""
    parser = argparse.ArgumentParser(prog="python -m lorabench.measure.sweep_worker")
    parser.add_argument("matrix", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--timeout-s", type=float, default=None)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        with signals_handled():
            from lorabench.measure.sweep import load_sweep, work

            work(load_sweep(args.matrix, args.out, args.repeats), timeout_s=args.timeout_s)
    except LorabenchError as exc:
        sys.stderr.write(f"lorabench: error: {' '.join(str(exc).split())}\n")
        return exc.exit_status
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
