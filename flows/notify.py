"""Notifications of the pipeline flow: a small JSON POSTed to a webhook when a run fails or reaches a registry
decision.

The URL comes from `$TOOLTUNE_WEBHOOK_URL` (a secret: set it on the worker, or in a deployment's
`job_variables.env`); without it nothing is sent. A post that fails (no server, a timeout, an HTTP error) is a
warning in the run's log and never changes the run's state. Logs name the webhook by scheme and host only: a
webhook's secret is usually in its path, query or user part.

Payload (`event` "failed" or "completed"): `flow`, `flow_run` {id, name}, `state`; on failure `failed_stage` (the
stage that raised, None when the run failed outside a stage) and `error`; on completion `stages_run` and
`registry` {model_name, version, promoted, alias, reason}. A completed run that did not reach `register` (nothing
to retrain, or a subset of stages) posts nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from prefect.logging.loggers import flow_run_logger

WEBHOOK_ENV = "TOOLTUNE_WEBHOOK_URL"
TIMEOUT_S = 10.0  # a slow webhook must not hold the worker
STAGE_NOTE = "tooltune stage: "  # the note pipeline() adds to the error of the stage that raised
MAX_ERROR_CHARS = 500


def redact(url: str) -> str:
    """`https://user:pw@hooks.example.com/T0/B1/secret?token=x` -> `https://hooks.example.com/…`."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or '?'}://{host}{port}/…"


def post(payload: dict[str, Any], logger: Any, environ: Mapping[str, str] | None = None) -> bool:
    """POST `payload` to `$TOOLTUNE_WEBHOOK_URL`; returns whether it was delivered (no URL: False, nothing sent)."""
    url = (os.environ if environ is None else environ).get(WEBHOOK_ENV, "").strip()
    if not url:
        return False
    shown = redact(url)
    try:
        httpx.post(url, json=payload, timeout=TIMEOUT_S).raise_for_status()
    except Exception as err:  # noqa: BLE001 - any failure of the notification is a warning, never the run's failure
        detail = (f"HTTP {err.response.status_code}" if isinstance(err, httpx.HTTPStatusError)
                  else f"{type(err).__name__}: {str(err).replace(url, shown)}")  # error texts may quote the URL
        logger.warning("webhook %s: notification %r not delivered (%s)", shown, payload.get("event"), detail)
        return False
    logger.info("webhook %s: notification %r delivered", shown, payload.get("event"))
    return True


def _run_info(flow: Any, flow_run: Any, state: Any) -> dict[str, Any]:
    return {"flow": flow.name, "flow_run": {"id": str(flow_run.id), "name": flow_run.name}, "state": state.name}


def failed_stage(err: BaseException | None) -> str | None:
    """The stage named in the error's notes (`STAGE_NOTE`), or None."""
    for note in getattr(err, "__notes__", ()):
        if note.startswith(STAGE_NOTE):
            return note[len(STAGE_NOTE):]
    return None


def failure_payload(flow: Any, flow_run: Any, state: Any) -> dict[str, Any]:
    """What failed: the flow run, the stage that raised and the error's first `MAX_ERROR_CHARS` characters."""
    err = state.result(raise_on_failure=False)
    err = err if isinstance(err, BaseException) else None
    error = f"{type(err).__name__}: {err}" if err is not None else (state.message or "")
    return {"event": "failed", **_run_info(flow, flow_run, state), "failed_stage": failed_stage(err),
            "error": error[:MAX_ERROR_CHARS]}


def completion_payload(flow: Any, flow_run: Any, state: Any) -> dict[str, Any] | None:
    """The registry's decision of a completed run, or None when the run did not reach `register`."""
    results = state.result(raise_on_failure=False)
    registered = results.get("register", {}).get("details", {}) if isinstance(results, dict) else {}
    if not registered:
        return None
    registry = {"model_name": registered.get("model_name"), "version": registered.get("version"),
                "promoted": registered.get("alias") == "champion", "alias": registered.get("alias"),
                "reason": registered.get("reason")}
    return {"event": "completed", **_run_info(flow, flow_run, state), "stages_run": list(results),
            "registry": registry}


def on_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook: post the failure (no webhook set: nothing)."""
    post(failure_payload(flow, flow_run, state), flow_run_logger(flow_run, flow))


def on_completion(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook: post the registry's decision when the run reached `register`."""
    payload = completion_payload(flow, flow_run, state)
    if payload is not None:
        post(payload, flow_run_logger(flow_run, flow))
