"""The web API's work, free of any HTTP framework: a decoded JSON body in, the `--json` document and the
command's exit code out. Bad input raises; ``message`` turns the error into the command line's one line.

Every name in a request must be a catalog id or alias: it is resolved against the loaded catalog and only
the canonical id reaches the library, so no request can make the server read a file. To add a command,
write its request class (planner.web.requests) and a handler, and add one line to ``ENDPOINTS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from planner.errors import InputError, input_error_message
from planner.web import requests as rq

EXIT_OK, EXIT_FAIL = 0, 1
_PATH_SUFFIXES = (".yaml", ".yml", ".gguf", ".json", ".safetensors")


def message(exc: BaseException) -> str | None:
    """The one-line message of a bad input (HTTP 422), None for anything else (a server error)."""
    return input_error_message(exc)


def _refuse_paths(name: str, option: str) -> None:
    n = name.strip()
    if any(c in n for c in "/\\\0") or n.lower().endswith(_PATH_SUFFIXES) or n.startswith((".", "~")):
        raise InputError(f"{option} takes a catalog id or alias in the web API, not a file: '{name}'")


def catalog_id(kind: str, name: str, option: str) -> str:
    """The canonical id of a catalog model or device named by id or alias; unknown names get the command
    line's message (with suggestions). Nothing on disk is looked at: the catalog is already loaded."""
    from planner.spec import catalog

    _refuse_paths(name, option)
    if kind == "gpu" and name.strip().lower() == "local":
        raise InputError("--gpu local is command-line only (it detects this machine's GPU); name a catalog id")
    cat = catalog.models() if kind == "model" else catalog.hardware()
    _ = cat.items  # load every entry, so that get() answers from the index and never opens a file
    return cat.get(name).id


def _host(name: str | None) -> str | None:
    """A host memory profile: its canonical id when the catalog has it; any other name that is not a path
    goes to the library, which refuses it with the command line's message."""
    from planner.spec import catalog

    if name is None:
        return None
    _refuse_paths(name, "--host")
    hw = catalog.hardware()
    _ = hw.items
    try:
        return hw.get(name).id
    except InputError:
        return name


def _plan(r: rq.PlanRequest, quant: str | None, ctx: int, prompt: int, gen: int) -> list:
    """What `planner plan` computes for these flags, in the same order of checks."""
    from planner.calibrate.store import efficiency_for
    from planner.estimate import plan, resolve
    from planner.physics.workload import Workload

    if r.parallel is not None and r.parallel not in ("tp", "pp", "layer"):
        raise InputError(f"--parallel takes tp, pp or layer, not '{r.parallel}'")
    model = catalog_id("model", r.model, "--model")
    gpu = catalog_id("gpu", r.gpu, "--gpu")
    host = _host(r.host)
    workload = Workload(ctx=ctx, batch=r.batch, prompt_tokens=prompt, gen_tokens=gen)
    efficiency = efficiency_for(gpu, r.engine, None)
    return plan(resolve(model, gpu, quant=quant, engine=r.engine, kv_dtype=r.kv_dtype, workload=workload,
                num_gpus=r.num_gpus, nodes=r.nodes, parallel=r.parallel, offload=r.offload, host=host,
                efficiency=efficiency, threads=r.threads))


def plan_handler(r: rq.PlanRequest) -> tuple[object, int]:
    from planner.views.documents import plan_document

    estimates = _plan(r, r.quant, r.ctx, r.prompt, r.gen)
    code = EXIT_OK if any(e.memory.fits for e in estimates) else EXIT_FAIL
    return plan_document(estimates, quant_given=bool(r.quant)), code


def default_points(max_context: int) -> list[int]:
    """Powers of two from 256 up to the trained context, and the trained context itself."""
    points, n = [], 256
    while n < max_context and len(points) < 23:
        points.append(n)
        n *= 2
    return [*points, max_context]


def sweep_handler(r: rq.SweepRequest) -> tuple[object, int]:
    """`plan --quant Q --ctx L --prompt L-1 --gen 1 --json` for each L: the decode speed of one step with
    L tokens in the context, and the memory that context needs."""
    from planner.spec import catalog
    from planner.views.documents import plan_document

    model = catalog_id("model", r.model, "--model")
    points = r.points or default_points(catalog.models().get(model).architecture.max_context)
    out = [{"ctx": n, "plan": plan_document(_plan(r, r.quant, n, n - 1, 1), quant_given=True)}
           for n in sorted(set(points))]
    return {"quant": r.quant, "points": out}, EXIT_OK


def _targets(r, min_ctx: int | None):
    from planner.search.recommend import Targets

    return Targets(min_ctx=min_ctx, min_tok_s=r.min_tok_s, max_ttft_s=r.max_ttft, max_e2e_s=r.max_e2e,
                   headroom_fraction=r.headroom)


def _check_prefer(prefer: str) -> None:
    if prefer not in ("quality", "speed"):
        raise InputError(f"--prefer takes quality or speed, not '{prefer}'")


def recommend_handler(r: rq.RecommendRequest) -> tuple[object, int]:
    from planner.search.recommend import prepare, recommend
    from planner.views.documents import recommend_document

    _check_prefer(r.prefer)
    s = prepare(catalog_id("model", r.model, "--model"), catalog_id("gpu", r.gpu, "--gpu"), r.engine,
                prompt=r.prompt, gen=r.gen, concurrency=r.concurrency, targets=_targets(r, r.min_ctx),
                max_gpus=r.num_gpus, quant=r.quant, kv_dtype=r.kv_dtype, offload=r.offload, host=_host(r.host))
    result = recommend(s, r.prefer, r.top)
    return recommend_document(result), EXIT_OK if result.recommendations else EXIT_FAIL


def compare_handler(r: rq.CompareRequest) -> tuple[object, int]:
    from planner.search.compare import compare, device_ids
    from planner.views.documents import compare_document

    _check_prefer(r.prefer)
    if r.gpus and r.all:
        raise InputError("give --gpus or --all, not both")
    model = catalog_id("model", r.model, "--model")
    names = device_ids(r.gpus, r.all)
    gpus = names if r.all else [catalog_id("gpu", g, "--gpus") for g in names]
    rows = compare(model, gpus, r.engine, r.ctx, r.quant, r.kv_dtype, r.prompt, r.gen, r.concurrency,
                   _targets(r, None), r.prefer, r.sort, r.min_quality, r.usd_per_gpu_hour)
    return compare_document(rows), EXIT_OK if any(row.fits for row in rows) else EXIT_FAIL


@dataclass(frozen=True)
class Endpoint:
    """One POST route: its request body and the work that answers it."""

    request: type
    handler: Callable[[object], tuple[object, int]]

    def __call__(self, body: object) -> tuple[object, int]:
        return self.handler(rq.parse(self.request, body))


ENDPOINTS: dict[str, Endpoint] = {
    "plan": Endpoint(rq.PlanRequest, plan_handler),
    "plan/sweep": Endpoint(rq.SweepRequest, sweep_handler),
    "recommend": Endpoint(rq.RecommendRequest, recommend_handler),
    "compare": Endpoint(rq.CompareRequest, compare_handler),
}


def engines() -> list[dict]:
    """The engines and the KV-cache dtypes each runs, for the page's selectors."""
    from planner.physics.engines import ENGINE_KV_DTYPES

    return [{"id": e.value, "kv_dtypes": list(kv)} for e, kv in ENGINE_KV_DTYPES.items()]
