"""The typed result every stage's `run(params)` returns: output paths and headline metrics."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class StageResult(BaseModel):
    """What a stage produced.

    Attributes:
        stage: Stage name (= module = params section = DVC stage).
        outputs: Named output paths the stage wrote.
        metrics: Headline numbers, written to `metrics/<stage>.json` and logged to MLflow.
        reports: Human-facing files (markdown, HTML, PNG) to publish as MLflow/Prefect artifacts.
        details: Small extra facts for the next stage or the report (JSON-serialisable).
    """

    model_config = ConfigDict(extra="forbid")

    stage: str
    outputs: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    reports: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
