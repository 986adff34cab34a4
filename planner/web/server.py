"""Run the web app on uvicorn: bind, say where, optionally open a browser, serve until Ctrl-C."""

from __future__ import annotations

import ipaddress
import socket
import sys

from planner.errors import InputError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port); errors name the address."""
    if not 0 <= port <= 65535:
        raise InputError(f"--port takes 0 … 65535, not {port}")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(f"--host {host}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def make_server(sock: socket.socket, time_limit_s: float | None = None):
    """A uvicorn server for the app on an already bound socket (tests run it in a thread)."""
    try:
        import uvicorn
    except ImportError:
        raise InputError("planner web needs the web extra: pip install 'planner[web]'") from None
    from planner.web.app import TIME_LIMIT_S, create_app

    app = create_app(time_limit_s=time_limit_s or TIME_LIMIT_S)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            limit_concurrency=512, timeout_keep_alive=5, h11_max_incomplete_event_size=16 * 1024)
    return uvicorn.Server(config)


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, open_browser: bool = False) -> None:
    """Serve until interrupted; warn when the page is reachable from other machines."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise InputError("planner web needs the web extra: pip install 'planner[web]'") from None
    if not is_loopback(host):
        print(f"warning: listening on {host}: the page has no authentication; anyone who can reach this "
              "port can use it", file=sys.stderr)
    sock = bind(host, port)
    server = make_server(sock)
    url = url_of(sock)
    print(f"planner web: {url}  (Ctrl-C stops it)", file=sys.stderr, flush=True)
    if open_browser:
        import webbrowser

        # a wildcard address listens everywhere but is not one to browse to
        webbrowser.open(url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://[::1]:"))
    server.run(sockets=[sock])
