"""`planner web`: the planner as a page in the browser, and the command line's JSON over HTTP.

Needs the optional extra ``web`` (Starlette, uvicorn): ``pip install 'planner[web]'``. See docs/web.md.
"""
