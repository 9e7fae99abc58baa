"""``lorabench serve``: a local web calculator and JSON API over :mod:`lorabench.api`.

``create_app`` is imported on first use (it needs FastAPI, an optional dependency: ``pip install
lorabench[web]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorabench.web.app import create_app
    from lorabench.web.worker import Limits

__all__ = ["Limits", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from lorabench.web.app import create_app

        return create_app
    if name == "Limits":
        from lorabench.web.worker import Limits

        return Limits
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
