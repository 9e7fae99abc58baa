"""``lorabench serve``: the web calculator and JSON API on this machine (loopback by default)."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

__all__ = ["serve_command"]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve_command(
    host: Annotated[
        str, typer.Option(help="Address to listen on; the default answers this machine only (loopback).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=0, max=65535)] = 8000,
    simulate_timeout: Annotated[
        float, typer.Option("--simulate-timeout", help="Seconds a simulate estimate may run before it is stopped.")
    ] = 180.0,
    formula_timeout: Annotated[
        float, typer.Option("--formula-timeout", help="Seconds a formula estimate, fit or cost may run.")
    ] = 60.0,
) -> None:
    """Serve the calculator page and the JSON API (estimate, fit, cost, catalog, models); docs at /docs."""
    from lorabench.errors import ConfigError

    try:
        import uvicorn

        from lorabench.web import Limits, create_app
    except ImportError as exc:
        raise ConfigError(f"serve: needs the web extra ({exc.name} is missing): pip install 'lorabench[web]'") from None
    if simulate_timeout <= 0 or formula_timeout <= 0:
        raise ConfigError("--simulate-timeout / --formula-timeout: must be > 0 seconds")
    if not _is_loopback(host):
        typer.echo(
            f"lorabench: warning: listening on {host}, reachable from other machines; the API has no authentication",
            err=True,
        )
    app = create_app(Limits(formula_timeout_s=formula_timeout, simulate_timeout_s=simulate_timeout))
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"lorabench: serving on http://{shown}:{port}/ (API docs at /docs); Ctrl-C stops", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
