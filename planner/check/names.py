"""Names as deployment files write them, mapped to catalog ids: GPU labels, model ids, GGUF file names, Ollama tags.

Every mapping returns ``(catalog id or None, note)``: the note says how the name was understood, or why
it was not (an ambiguous GPU, a model the catalog lacks), so a reviewer sees the reasoning next to the verdict.

GPU labels. NVIDIA GPU Feature Discovery publishes ``nvidia.com/gpu.product`` as the CUDA device name with
spaces replaced by dashes (``NVIDIA-A100-SXM4-80GB``, ``NVIDIA-H100-80GB-HBM3``, ``Tesla-T4``); those match the
catalog's aliases (the device names) once dashes and spaces are treated alike. GKE publishes
``cloud.google.com/gke-accelerator`` values (``nvidia-l4``, ``nvidia-a100-80gb``), and AWS nodes carry the
instance type, which fixes the GPU (``g5.*`` = A10G). Those two are the tables below; sources: GKE "GPU
platforms" page (cloud.google.com/compute/docs/gpus) and AWS "Accelerated computing instances" page.
"""

from __future__ import annotations

import re

from planner.errors import InputError

# cloud.google.com/gke-accelerator values -> catalog ids (GKE "About GPUs" page: accelerator names).
GKE_ACCELERATORS = {
    "nvidia-l4": "l4",
    "nvidia-tesla-t4": "t4",
    "nvidia-tesla-a100": "a100-40gb",
    "nvidia-a100-80gb": "a100-80gb-sxm",
    "nvidia-h100-80gb": "h100-sxm",
    "nvidia-h100-mega-80gb": "h100-sxm",
    "nvidia-h200-141gb": "h200",
    "nvidia-b200": "b200",
    "nvidia-tesla-v100": None,  # the 16 GB V100; the catalog holds only the 32 GB part
}

# AWS instance-type prefixes -> catalog ids (AWS "Accelerated computing" instance pages).
AWS_INSTANCE_PREFIXES = {
    "g5.": "a10g", "g5g.": None, "g6.": "l4", "g6e.": "l40s", "g4dn.": "t4", "p4d.": "a100-40gb",
    "p4de.": "a100-80gb-sxm", "p5.": "h100-sxm", "p5e.": "h200", "p5en.": "h200", "p6-b200.": "b200",
}

# Labels seen in published manifests that GPU Feature Discovery never emits, or that name a family
# whose memory size the planner needs: refused with the reason instead of guessed.
AMBIGUOUS_GPUS = {
    "tesla-v100": "the V100 comes with 16 or 32 GB; name the part (Tesla-V100-SXM2-32GB) or set planner.gpu",
    "v100": "the V100 comes with 16 or 32 GB; name the part (Tesla-V100-SXM2-32GB) or set planner.gpu",
    "nvidia-a100": "the A100 comes with 40 or 80 GB; name the part (NVIDIA-A100-SXM4-80GB) or set planner.gpu",
    "a100": "the A100 comes with 40 or 80 GB; name the part (NVIDIA-A100-SXM4-80GB) or set planner.gpu",
}

# GPU Feature Discovery labels that look right but are not what it publishes for that card.
MISLEADING_GPUS = {
    "nvidia-h100-sxm4-80gb": ("h100-sxm", "'NVIDIA-H100-SXM4-80GB' is not a label GPU Feature Discovery publishes "
                                          "(H100 SXM is NVIDIA-H100-80GB-HBM3); read as h100-sxm"),
}

PRODUCT_LABELS = ("nvidia.com/gpu.product", "cloud.google.com/gke-accelerator", "node.kubernetes.io/instance-type",
                  "beta.kubernetes.io/instance-type", "machine.cluster.vke.volcengine.com/gpu-name")


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def gpu_id(label_key: str, value: str) -> tuple[str | None, str]:
    """A node label or annotation value -> (catalog id, how it was read) or (None, why not)."""
    from planner.spec import catalog

    v = _key(str(value))
    if not v:
        return None, f"empty GPU label {label_key}"
    if v in MISLEADING_GPUS:
        return MISLEADING_GPUS[v]
    if v in AMBIGUOUS_GPUS:
        return None, f"GPU '{value}' ({label_key}) is ambiguous: {AMBIGUOUS_GPUS[v]}"
    if label_key.endswith("instance-type"):
        for prefix, gid in AWS_INSTANCE_PREFIXES.items():
            if v.startswith(prefix):
                if gid is None:
                    return None, f"instance type '{value}' has no GPU in the catalog"
                return gid, f"instance type {value} has {gid} GPUs"
        return None, f"instance type '{value}' does not name a GPU the planner knows"
    if v in GKE_ACCELERATORS:
        gid = GKE_ACCELERATORS[v]
        if gid is None:
            return None, f"GPU '{value}' is not in the catalog"
        return gid, f"{label_key}={value}"
    try:
        return catalog.hardware().get(v).id, f"{label_key}={value}"
    except InputError:
        return None, f"GPU '{value}' ({label_key}) is not in the catalog (planner gpus lists it)"


# --------------------------------------------------------------------------------------------- models

QUANT_RE = re.compile(r"(?<![a-z0-9])(i?q[2-8]_(?:k_[sml]|k|[01]|xs|xxs|s|m|nl)|f16|bf16|fp16|f32|mxfp4|fp8|awq|gptq|"
                      r"int8|int4|w4a16|nf4)(?![a-z0-9])", re.IGNORECASE)
_GGUF_QUANTS = {"q8_0": "q8_0", "q6_k": "q6_k", "q5_k_m": "q5_k_m", "q5_0": "q5_0", "q4_k_m": "q4_k_m",
                "q4_0": "q4_0", "q3_k_m": "q3_k_m", "q2_k": "q2_k", "iq4_xs": "iq4_xs", "f16": "f16", "fp16": "f16",
                "bf16": "bf16", "mxfp4": "mxfp4"}
_HF_QUANTS = {"fp8": "fp8", "awq": "awq-int4", "gptq": "gptq-int4", "int8": "int8", "w4a16": "gptq-int4",
              "nf4": "nf4", "bf16": "bf16", "mxfp4": "mxfp4"}
_NOISE = re.compile(r"[-_.](instruct|chat|it|hf|gguf|base|latest)(?=$|[-_.])", re.IGNORECASE)

# Ollama library tags without a size: the size the library serves for the bare name (ollama.com/library/<name>,
# "latest" tag), each Q4_K_M unless noted.
OLLAMA_DEFAULT_TAGS = {
    "llama3.2": "llama3.2-3b", "llama3.1": "llama3.1-8b", "llama3": "llama3-8b", "llama2": "llama2-7b",
    "mistral": "mistral-7b", "qwen2.5": "qwen2.5-7b", "qwen3": "qwen3-8b", "gemma2": "gemma2-9b",
    "phi3": "phi3-mini", "mixtral": "mixtral-8x7b", "gpt-oss": "gpt-oss-20b", "llama3.3": "llama3.3-70b",
    "codellama": None,
}


def _catalog_model(name: str) -> str | None:
    from planner.spec import catalog

    try:
        return catalog.models().get(name).id
    except InputError:
        return None


def split_quant(name: str, table: dict[str, str]) -> tuple[str, str | None]:
    """``Llama-3.1-8B-Instruct-Q4_K_M`` -> (``Llama-3.1-8B-Instruct``, ``q4_k_m``); the last quant token wins."""
    found = list(QUANT_RE.finditer(name))
    for m in reversed(found):
        q = table.get(m.group(1).lower())
        if q:
            return (name[:m.start()] + name[m.end():]).strip("-_. :"), q
    return name, None


def model_id(name: str) -> str | None:
    """A model name as written (HF id, file stem, tag) -> catalog id, trying the name and then its base
    without the org, the variant words (Instruct, GGUF) and the ``Meta-`` prefix."""
    name = name.strip()
    if not name or len(name) > 300:
        return None
    tries = [name, name.split("/")[-1]]
    base = name.split("/")[-1]
    stripped = _NOISE.sub("", base)
    stripped = _NOISE.sub("", stripped)
    tries += [stripped, re.sub(r"^meta-", "", stripped, flags=re.IGNORECASE)]
    tries += [t.replace("llama-", "llama", 1).replace("Llama-", "llama", 1) for t in tries[2:]]
    for t in tries:
        gid = _catalog_model(t)
        if gid:
            return gid
    return None


def gguf_name(path: str) -> tuple[str | None, str | None, str]:
    """A GGUF file name -> (model id, quant, note); ``Llama-3.1-8B-Instruct-Q4_K_M.gguf`` -> llama3.1-8b, q4_k_m."""
    stem = path.replace("\\", "/").split("/")[-1]
    stem = re.sub(r"(-\d{5}-of-\d{5})?\.gguf$", "", stem, flags=re.IGNORECASE)
    base, quant = split_quant(stem, _GGUF_QUANTS)
    mid = model_id(base)
    if mid is None:
        return None, quant, f"model '{stem}' is not in the catalog (planner models lists it)"
    return mid, quant, f"file name {stem} read as {mid}" + (f", {quant}" if quant else "")


def hf_name(name: str) -> tuple[str | None, str | None, str]:
    """A Hugging Face repository id -> (model id, quant the name implies or None, note)."""
    base, quant = split_quant(name, _HF_QUANTS)
    mid = model_id(name) or model_id(base)
    if mid is None:
        return None, quant, f"model '{name}' is not in the catalog (planner models lists it)"
    return mid, quant, name if mid == name else f"{name} read as {mid}"


def ollama_tag(tag: str) -> tuple[str | None, str | None, str]:
    """An Ollama model reference -> (model id, quant, note).

    ``llama3.1:8b-instruct-q6_K`` -> llama3.1-8b, q6_k; ``llama3.2`` -> the library's default size, Q4_K_M;
    ``hf.co/<org>/<repo>-GGUF:Q8_0`` -> the repo's model, q8_0."""
    tag = tag.strip()
    if tag.startswith(("hf.co/", "huggingface.co/")):
        repo, _, q = tag.partition(":")
        mid, _, note = gguf_name(repo.split("/", 1)[1] + (f"-{q}" if q else "") + ".gguf")
        quant = _GGUF_QUANTS.get(q.lower()) if q else None
        return mid, quant, note
    if tag.startswith(("/", "./", "../", "sha256")):
        return None, None, f"FROM '{tag[:60]}' is a local file or blob; its model is not named"
    name, _, variant = tag.partition(":")
    name = name.split("/")[-1]
    quant = None
    if variant and variant != "latest":
        rest, quant = split_quant(variant, _GGUF_QUANTS)
        size = re.match(r"(\d+(?:\.\d+)?[bm])", rest.lower())
        mid = model_id(f"{name}-{size.group(1)}") if size else None
        if mid is None and size is None:
            mid = OLLAMA_DEFAULT_TAGS.get(name.lower())
    else:
        mid = OLLAMA_DEFAULT_TAGS.get(name.lower())
    if mid is None:
        return None, quant, f"Ollama model '{tag}' is not in the catalog (planner models lists it)"
    quant = quant or ("mxfp4" if mid.startswith("gpt-oss") else "q4_k_m")
    return mid, quant, f"Ollama {tag} read as {mid} {quant}"
