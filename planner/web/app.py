"""The HTTP side of `planner web`: a Starlette app serving the page and the JSON API.

* ``GET /``: the page (planner/web/static/index.html; no other asset exists or is fetched).
* ``GET /api/models``, ``/api/gpus``: the documents of `planner models --json` / `planner gpus --json`;
  ``GET /api/engines``: the engines and the KV dtypes each runs.
* ``POST /api/<command>`` for each entry of ``planner.web.api.ENDPOINTS``: the command's `--json` document,
  byte for byte as the command prints it, with its exit code in the ``X-Planner-Exit-Code`` header (0 fine, 1 does not fit /
  misses a target). Bad input: 422 ``{"error": "<the command line's one line>"}``.

Limits, because the page may be shared inside a network: a body over ``MAX_BODY_BYTES`` is refused (413);
the work runs on a small pool of threads (``workers``) and a request that has not been answered within
``time_limit_s`` (waiting included) gets 503, so a burst queues instead of piling up threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from planner.views.text import to_json
from planner.web.api import ENDPOINTS, engines, message

MAX_BODY_BYTES = 16 * 1024
TIME_LIMIT_S = 30.0
WORKERS = 4
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# The page is self-contained: scripts and styles inline, no request outside this server.
PAGE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class _TooLarge(Exception):
    pass


def page_html() -> str:
    return resources.files("planner.web").joinpath("static/index.html").read_text(encoding="utf-8")


def _error(status: int, text: str) -> JSONResponse:
    return JSONResponse({"error": text}, status_code=status, headers=SECURITY_HEADERS)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _TooLarge
    return bytes(body)


def create_app(time_limit_s: float = TIME_LIMIT_S, workers: int = WORKERS) -> Starlette:
    """The app; ``time_limit_s`` bounds each API request, ``workers`` the computations run at once."""
    from planner.spec import catalog
    from planner.views.documents import gpu_rows, model_rows

    for entries in (catalog.models(), catalog.hardware()):
        entries.ids()  # load (and validate) both catalogs once, up front
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="planner-web")
    page = page_html()
    listings = {name: to_json(rows) + "\n" for name, rows in
                (("models", model_rows()), ("gpus", gpu_rows()), ("engines", engines()))}

    async def index(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8",
                        headers={**SECURITY_HEADERS, "Content-Security-Policy": PAGE_CSP})

    def listing(text: str):
        async def answer(request: Request) -> Response:
            return Response(text, media_type="application/json", headers=SECURITY_HEADERS)

        return answer

    async def command(request: Request) -> Response:
        endpoint = ENDPOINTS.get(request.path_params["command"])
        if endpoint is None:
            return _error(404, f"no such command: {request.path_params['command']}")
        try:
            raw = await _read_body(request)
        except _TooLarge:
            return _error(413, f"the request body is over {MAX_BODY_BYTES:,} bytes")
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(422, f"the request body is not JSON: {str(exc).splitlines()[0]}")
        loop = asyncio.get_running_loop()
        try:
            document, code = await asyncio.wait_for(loop.run_in_executor(pool, endpoint, body), time_limit_s)
        except asyncio.TimeoutError:
            return _error(503, f"no answer within {time_limit_s:g} s; ask for less (fewer GPUs, one quant)")
        except Exception as exc:  # noqa: BLE001 - bad input is 422 with its line, anything else is ours
            text = message(exc)
            return _error(422, text) if text is not None else _error(500, "internal error")
        return Response(to_json(document) + "\n", media_type="application/json",
                        headers={**SECURITY_HEADERS, "X-Planner-Exit-Code": str(code)})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    routes = [
        Route("/", index, methods=["GET"]),
        *[Route(f"/api/{what}", listing(text), methods=["GET"]) for what, text in listings.items()],
        Route("/api/{command:path}", command, methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
