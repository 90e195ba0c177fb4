"""Retention of registered versions: not-promoted versions do not keep full model copies forever.

Reads: the versions of `register.model_name` in the MLflow registry (tags, aliases), params
`register.keep_unpromoted` (passed in).
Writes: deletes the weights of old not-promoted versions from the artifact store and tags them `tooltune.pruned`.
Run: `register` calls `prune` after its decision; nothing runs this module alone.

The rule: a version whose promotion was decided and refused (the caller's `unpromoted` test) keeps its weights while
it is among the `keep` newest such versions; older ones lose the folder the pyfunc model holds the Hugging Face
model in (`artifacts/` inside the version's artifacts: the full-precision weights, the tokenizer). The version
stays, with its tags, description (the model card), MLmodel, `README.md` and code, so its lineage and scores remain
readable; it is tagged `tooltune.pruned` with when and why, and it no longer loads. Never pruned: promoted versions
(rollback targets), versions holding any alias (`champion`, `previous`, `challenger`, or one a person set),
versions still being decided (another promoter's), versions from before the `promotion` tag existed.
Deleting first and tagging second makes a retry safe: a version deleted but not yet tagged is deleted again (a
no-op) and then tagged.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

PRUNED_TAG = "tooltune.pruned"
WEIGHTS = "artifacts"  # the pyfunc's `artifacts={"model": folder}` land under <version>/artifacts/<folder name>


def prune(client: MlflowClient, model_name: str, keep: int, unpromoted: Callable[[ModelVersion], bool]) -> list[str]:
    """Delete the weights of the not-promoted versions older than the `keep` newest ones; return those pruned now.

    Args:
        client: A client of the registry (and its artifact store).
        model_name: The registered model.
        keep: How many of the newest not-promoted versions keep their weights (`register.keep_unpromoted`).
        unpromoted: True for a version whose promotion was decided and refused.
    """
    aliased = {str(v) for v in client.get_registered_model(model_name).aliases.values()}
    refused = sorted((v for v in client.search_model_versions(f"name = '{model_name}'") if unpromoted(v)),
                     key=lambda v: int(v.version), reverse=True)
    pruned = []
    for version in refused[keep:]:
        if str(version.version) in aliased or PRUNED_TAG in version.tags:
            continue
        location = client.get_model_version_download_uri(model_name, version.version)
        get_artifact_repository(location).delete_artifacts(WEIGHTS)
        client.set_model_version_tag(model_name, version.version, PRUNED_TAG, (
            f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}: weights deleted (register.keep_unpromoted="
            f"{keep}: not promoted and older than the {keep} newest not-promoted versions); tags, card and code "
            "kept, the version no longer loads"))
        pruned.append(str(version.version))
    return pruned
