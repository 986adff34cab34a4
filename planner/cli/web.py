"""`planner web`: the planner as a page in the browser, with the command line's JSON over HTTP."""

from __future__ import annotations

import typer

from planner.cli.base import guarded


def web_command(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (non-loopback: no authentication!)"),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="TCP port (0: any free port)"),
    open_browser: bool = typer.Option(False, "--open", help="open the page in the default browser"),
) -> None:
    """Serve the planner page and its JSON API (POST /api/plan, /api/recommend, /api/compare; GET
    /api/models, /api/gpus). Needs the web extra: pip install 'planner[web]'."""
    from planner.web.server import serve

    serve(host, port, open_browser)


def register(app: typer.Typer) -> None:
    app.command("web")(guarded(web_command))
