"""Pure overlay edits: minimal diffs, comments kept, idempotence, and refusals with clear reasons."""

from __future__ import annotations

import difflib
from collections.abc import Callable

import pytest

from serving.rollout import manifest
from serving.rollout.manifest import ManifestError
from tests.conftest import REPO_ROOT

OVERLAYS = ("staging", "prod")
NEW = "gs://bucket/artifacts/7/ffff/artifacts/model"
D3 = "3" * 64
D4 = "4" * 64

SMALL = """\
# top comment
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: sentiment
  annotations:
    other.io/keep: 'single'   # trailing comment
    sentimentops.io/model-version: "3"
    sentimentops.io/model-digest: "3333333333333333333333333333333333333333333333333333333333333333"
spec:
  predictor:
    minReplicas: 2
    model:
      # where the model is
      storageUri: gs://bucket/artifacts/3/aaaa/artifacts/model
      env:
        - name: SENTIMENTOPS_EXPECTED_MODEL_DIGEST
          value: "3333333333333333333333333333333333333333333333333333333333333333"
      resources: {requests: {cpu: "1"}}
"""


def changes(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


@pytest.mark.parametrize("env", OVERLAYS)
def test_real_overlays_round_trip_byte_for_byte(env: str) -> None:
    text = (REPO_ROOT / "k8s" / "overlays" / env / "inferenceservice.yaml").read_text()
    state = manifest.read_state(text)
    assert not state.in_canary and state.model_version and state.storage_uri.startswith("gs://")
    canary = manifest.with_canary(text, "99", NEW, 10, D4)
    assert canary.changed and canary.after.in_canary
    assert manifest.rolled_back(canary.text).text == text


def test_edits_touch_only_their_lines_and_keep_comments_and_quotes() -> None:
    canary = manifest.with_canary(SMALL, "4", NEW, 10, D4)
    assert sorted(changes(SMALL, canary.text)) == sorted(
        [
            '-    sentimentops.io/model-version: "3"',
            '+    sentimentops.io/model-version: "4"',
            '+    sentimentops.io/stable-model-version: "3"',
            "+    sentimentops.io/stable-storage-uri: gs://bucket/artifacts/3/aaaa/artifacts/model",
            f'+    sentimentops.io/stable-model-digest: "{D3}"',
            f'-    sentimentops.io/model-digest: "{D3}"',
            f'+    sentimentops.io/model-digest: "{D4}"',
            "+    canaryTrafficPercent: 10",
            "-      storageUri: gs://bucket/artifacts/3/aaaa/artifacts/model",
            f"+      storageUri: {NEW}",
            f'-          value: "{D3}"',
            f'+          value: "{D4}"',
        ]
    )
    assert canary.after == manifest.ManifestState(
        "4", NEW, 10, "3", "gs://bucket/artifacts/3/aaaa/artifacts/model", D4, D3
    )
    promoted = manifest.promoted(canary.text)
    assert sorted(changes(SMALL, promoted.text)) == sorted(
        [
            '-    sentimentops.io/model-version: "3"',
            '+    sentimentops.io/model-version: "4"',
            f'-    sentimentops.io/model-digest: "{D3}"',
            f'+    sentimentops.io/model-digest: "{D4}"',
            "-      storageUri: gs://bucket/artifacts/3/aaaa/artifacts/model",
            f"+      storageUri: {NEW}",
            f'-          value: "{D3}"',
            f'+          value: "{D4}"',
        ]
    )
    assert manifest.rolled_back(canary.text).text == SMALL


def test_overlay_without_a_pinned_digest_gets_one_and_rollback_removes_it() -> None:
    """An overlay from before digests were pinned: the canary is pinned (annotation and env); rolling
    back gives the original bytes, whose predictor then refuses to start (fail closed)."""
    legacy = SMALL.replace(f'    sentimentops.io/model-digest: "{D3}"\n', "").replace(
        f'      env:\n        - name: SENTIMENTOPS_EXPECTED_MODEL_DIGEST\n          value: "{D3}"\n', ""
    )
    assert manifest.read_state(legacy).model_digest is None
    canary = manifest.with_canary(legacy, "4", NEW, 10, D4)
    assert canary.after.model_digest == D4 and f'value: "{D4}"' in canary.text
    assert manifest.rolled_back(canary.text).text == legacy


def test_the_served_versions_int8_loss_travels_with_it_through_canary_promote_and_rollback() -> None:
    """The predictor cannot ask MLflow: the overlay carries each served version's recorded int8 loss next
    to its digest; a rollback restores the stable one's (or its absence) byte for byte."""
    canary = manifest.with_canary(SMALL, "4", NEW, 10, D4, int8_loss="0.25")
    assert canary.after.int8_accuracy_loss == "0.25" and canary.after.stable_int8_accuracy_loss is None
    env_lines = canary.text.split("env:\n", 1)[1].splitlines()[:4]
    assert env_lines == [
        "        - name: SENTIMENTOPS_EXPECTED_MODEL_DIGEST",
        f'          value: "{D4}"',
        "        - name: SENTIMENTOPS_INT8_ACCURACY_LOSS",
        '          value: "0.25"',
    ]
    assert manifest.rolled_back(canary.text).text == SMALL  # the stable model had none: it is removed
    promoted = manifest.promoted(canary.text)
    assert promoted.after.int8_accuracy_loss == "0.25" and not promoted.after.in_canary

    # The next canary has no recorded loss: its env has none, and a rollback brings the stable's back.
    second = manifest.with_canary(promoted.text, "5", NEW.replace("7", "8"), 10, D3)
    assert second.after.int8_accuracy_loss is None and second.after.stable_int8_accuracy_loss == "0.25"
    assert "SENTIMENTOPS_INT8_ACCURACY_LOSS" not in second.text
    assert manifest.rolled_back(second.text).text == promoted.text
    assert manifest.promoted(second.text).after.stable_int8_accuracy_loss is None


def test_annotation_and_env_that_disagree_are_refused() -> None:
    bad = SMALL.replace(f'          value: "{D3}"', f'          value: "{D4}"')
    with pytest.raises(ManifestError, match="disagree"):
        manifest.read_state(bad)


def test_reapplying_is_a_noop() -> None:
    canary = manifest.with_canary(SMALL, "4", NEW, 10, D4)
    again = manifest.with_canary(canary.text, "4", NEW, 10, D4)
    assert not again.changed and again.text == canary.text
    assert not manifest.with_canary(
        SMALL, "3", "gs://bucket/artifacts/3/aaaa/artifacts/model", 10, D3
    ).changed  # already served
    assert not manifest.promoted(SMALL).changed
    assert not manifest.rolled_back(SMALL).changed
    promoted = manifest.promoted(canary.text).text
    assert not manifest.promoted(promoted).changed
    assert not manifest.with_canary(promoted, "4", NEW, 10, D4).changed


@pytest.mark.parametrize(
    ("text", "call", "message"),
    [
        ("kind: [unclosed", lambda t: manifest.read_state(t), "not valid YAML"),
        ("kind: Deployment\n", lambda t: manifest.read_state(t), "not an InferenceService patch"),
        (
            SMALL.replace("      storageUri: gs://bucket/artifacts/3/aaaa/artifacts/model\n", ""),
            lambda t: manifest.read_state(t),
            "no spec.predictor.model.storageUri",
        ),
        (SMALL, lambda t: manifest.with_canary(t, "4", NEW, 100, D4), "between 1 and 99"),
        (
            SMALL.replace('    sentimentops.io/model-version: "3"\n', ""),
            lambda t: manifest.with_canary(t, "4", NEW, 10, D4),
            "no sentimentops.io/model-version annotation",
        ),
        (
            manifest.with_canary(SMALL, "4", NEW, 10, D4).text,
            lambda t: manifest.with_canary(t, "5", "gs://b/5", 10, D4),
            "a canary of version 4 is already rolled out",
        ),
        (
            SMALL.replace("    model:\n", "    canaryTrafficPercent: 10\n    model:\n"),
            lambda t: manifest.rolled_back(t),
            "cannot tell what to roll back to",
        ),
    ],
)
def test_refusals_are_clear(text: str, call: Callable[[str], object], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        call(text)
