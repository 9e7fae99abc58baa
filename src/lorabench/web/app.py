"""The FastAPI app of ``lorabench serve``: a JSON API over :mod:`lorabench.api` and one static page.

Endpoints (all documented at ``/docs`` and ``/openapi.json``):

- ``GET /api/models``, ``GET /api/gpus``, ``GET /api/catalog``: the architecture, GPU and price catalogs
  (``lorabench models --json``, the GPU datasheet facts, ``lorabench catalog --json``);
- ``POST /api/estimate``, ``POST /api/fit``, ``POST /api/cost``: the records ``lorabench estimate --json``,
  ``lorabench fit --json`` and ``lorabench cost --json`` print, computed in the compute worker
  (:mod:`lorabench.web.worker`);
- ``GET /api/health``; ``GET /`` the calculator page (static HTML, JS and CSS, nothing loaded from elsewhere).

Bad input answers 422 with FastAPI's validation shape (``detail[].loc`` names the field); a full queue 429; a
job past its time limit 503; a body over the upload limit 413.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from lorabench.web.jobs import SPEC_FIELDS
from lorabench.web.schemas import CostRequest, EstimateRequest, FitRequest
from lorabench.web.worker import Busy, JobError, JobTimeout, Limits, Worker

__all__ = ["create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_STATIC = resources.files("lorabench.web").joinpath("static")
_FIELDS = {*SPEC_FIELDS, "engine", "device", "tokens", "model_config", "config_text", "config_name"}
_ALIASES = {"hardware.count": "gpus", "hardware.gpu": "gpu", "hardware": "gpu", "micro_batch_size": "micro_batch"}
_PREFIX = re.compile(r"^invalid run spec from [^:]*: ")
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"description": "The request body is over the upload limit."},
    429: {"description": "The compute worker's queue is full, or a simulation is already queued."},
    503: {"description": "The job ran past the server's time limit (the worker was restarted)."},
}


def field_errors(kind: str, message: str, fields: set[str] | None = None) -> list[dict[str, Any]]:
    """Turn a lorabench error message into FastAPI's validation ``detail`` list, one item per named field.

    ``"invalid run spec from command line: bits: ...; rank: ..."`` gives ``loc`` ``["body", "bits"]`` and
    ``["body", "rank"]``; a message that names no request field is located at ``["body"]``.
    """
    known = fields if fields is not None else _FIELDS
    fallback = {"ModelError": "model", "CatalogError": "gpu" if "gpu" in message.lower() else ""}.get(kind, "")
    items: list[dict[str, Any]] = []
    for part in _PREFIX.sub("", message).split("; "):
        head = (part.split(":", 1)[0].split() or [""])[0] if ":" in part else ""
        name = _ALIASES.get(head, head.split(".", 1)[0])
        if part.startswith("no model given"):
            name = "model"
        if name not in known and items:  # the previous problem's message goes on ("...; use lora for 8-bit")
            items[-1]["msg"] += "; " + part
            continue
        name = name if name in known else fallback
        loc: list[str] = ["body", name] if name else ["body"]
        items.append({"loc": loc, "msg": part, "type": f"lorabench.{kind}"})
    return items


class _BodyLimit:
    """Answer 413 when a request body grows past ``limit`` bytes (by Content-Length or as it streams in)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await self._reject(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body over the server's limit of {self.limit:,} bytes"}, status_code=413
        )
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


class _TooLarge(Exception):
    pass


def create_app(limits: Limits | None = None, worker: Worker | None = None) -> FastAPI:
    """Build the app.

    Args:
        limits: Request-cost limits (time limits, queue length, upload size).
        worker: The compute worker (default: a new one, started with the app and stopped with it).

    Returns:
        The ASGI app (run it with uvicorn, or drive it with ``fastapi.testclient.TestClient``).
    """
    from lorabench import __version__
    from lorabench.api import catalog_record, gpus_record, models_record

    limits = limits or (worker.limits if worker is not None else Limits())
    compute = worker or Worker(limits)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        compute.start()
        try:
            yield
        finally:
            compute.close()

    app = FastAPI(
        title="lorabench",
        version=__version__,
        summary="Predict the GPU memory, time and cost of LoRA / QLoRA / DoRA / rsLoRA fine-tuning.",
        description=(__doc__ or "").split("\n\n", 1)[0],
        lifespan=lifespan,
    )
    app.state.worker = compute
    models, gpus, catalog = models_record(), gpus_record(), catalog_record()

    def job(kind: str, payload: dict[str, Any], simulate: bool = False) -> Any:
        try:
            return compute.run(kind, payload, simulate=simulate)
        except Busy as exc:
            return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": "5"})
        except JobTimeout as exc:
            return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})
        except JobError as exc:
            if exc.kind == "crash":
                return JSONResponse({"detail": f"internal error: {exc.message}"}, status_code=500)
            return JSONResponse({"detail": field_errors(exc.kind, exc.message)}, status_code=422)

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    @app.get("/api/health", tags=["meta"])
    async def health() -> dict[str, Any]:
        """The server's version and limits."""
        return {
            "status": "ok",
            "lorabench_version": __version__,
            "limits": {
                "formula_timeout_s": limits.formula_timeout_s,
                "simulate_timeout_s": limits.simulate_timeout_s,
                "max_waiting": limits.max_waiting,
                "max_upload_bytes": limits.max_upload_bytes,
            },
        }

    @app.get("/api/models", tags=["catalogs"])
    async def list_models() -> dict[str, Any]:
        """The architecture catalog: name to display name, source and config facts (``lorabench models --json``)."""
        return models

    @app.get("/api/gpus", tags=["catalogs"])
    async def list_gpus() -> dict[str, Any]:
        """The GPU catalog: key to datasheet facts (memory, TFLOPS, bandwidth), each with its source and date."""
        return gpus

    @app.get("/api/catalog", tags=["catalogs"])
    async def list_prices() -> dict[str, Any]:
        """Every price with its date and source: GPU rates, services, references (``lorabench catalog --json``)."""
        return catalog

    @app.post("/api/estimate", tags=["predict"], responses=_ERRORS)
    async def estimate(body: EstimateRequest) -> Any:
        """Parameters, weights, peak memory per component, which GPUs fit, and time: ``lorabench estimate --json``.

        ``tokens`` with ``gpu`` adds the predicted time and its interval. ``engine=simulate`` is queued one at
        a time with a time limit (GET /api/health).
        """
        payload = body.payload() | {"engine": body.engine, "device": body.device}
        return await run_in_threadpool(job, "estimate", payload, body.engine == "simulate")

    @app.post("/api/fit", tags=["predict"], responses=_ERRORS)
    async def fit(body: FitRequest) -> Any:
        """The largest micro batch and sequence length that fit on one GPU: ``lorabench fit --json``."""
        return await run_in_threadpool(job, "fit", body.payload())

    @app.post("/api/cost", tags=["cost"], responses=_ERRORS)
    async def cost(body: CostRequest) -> Any:
        """Self-hosted versus commercial fine-tuning, every price dated and sourced: ``lorabench cost --json``."""
        return await run_in_threadpool(job, "cost", body.model_dump(exclude_none=True))

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(_STATIC.joinpath("index.html")), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(_STATIC)), name="static")
    app.add_middleware(_BodyLimit, limit=2 * limits.max_upload_bytes + 64 * 1024)
    return app
