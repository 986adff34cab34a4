"""Make docs/web.png: the page for one plan, in headless Chromium (Debian's `chromium` + Playwright).

    python docs/web_screenshot.py [--out docs/web.png] [--query '?model=...']
"""

from __future__ import annotations

import argparse
import shutil
import threading
import time

from playwright.sync_api import sync_playwright

from planner.web.server import bind, make_server, url_of

QUERY = "?model=qwen2.5-32b&gpu=rtx4090&ctx=16384&quant=q4_k_m"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/web.png")
    parser.add_argument("--query", default=QUERY)
    parser.add_argument("--width", type=int, default=1440)
    args = parser.parse_args()
    sock = bind("127.0.0.1", 0)
    server = make_server(sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": args.width, "height": 900}, color_scheme="light")
            page.goto(url_of(sock) + args.query)
            page.wait_for_selector("#speed svg circle")
            page.wait_for_function("() => !document.querySelector('#plan-title').classList.contains('busy')")
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
