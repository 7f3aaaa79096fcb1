"""Pure edits of an overlay's InferenceService patch (``k8s/overlays/<env>/inferenceservice.yaml``).

Every function takes the file's text and returns new text, editing the YAML in place with ruamel's
round-trip mode so that comments, key order and quoting survive and the Git diff shows only the lines
that changed. The rollout state lives in the file itself:

- steady: ``spec.predictor.model.storageUri`` is the served model, annotation
  ``sentimentops.io/model-version`` its registry version, and its registry ``model_digest`` is pinned
  twice: annotation ``sentimentops.io/model-digest`` (for people and the rollout) and the container env
  ``SENTIMENTOPS_EXPECTED_MODEL_DIGEST`` in ``spec.predictor.model.env`` (what the predictor checks:
  it refuses to start unless ``/mnt/models`` hashes to exactly that digest);
- canary: the same fields name the *canary* (KServe rolls the latest spec out as the canary), plus
  ``spec.predictor.canaryTrafficPercent`` and the annotations ``sentimentops.io/stable-model-version``,
  ``sentimentops.io/stable-storage-uri`` and ``sentimentops.io/stable-model-digest`` that remember what
  to roll back to.
- int8: ``SENTIMENTOPS_INT8_ACCURACY_LOSS`` in the same env carries the served version's recorded int8
  validation accuracy loss (registry tag ``int8_accuracy_loss_validation``): the predictor has no route to
  MLflow, and with ``quantize=auto`` it serves the int8 graph only when this says the loss is small. A
  version without the tag gets no such env (fp32). During a canary, annotation
  ``sentimentops.io/stable-int8-accuracy-loss`` remembers the stable model's value for a rollback.

``propose`` then ``rollback`` gives back the original bytes; ``propose`` then ``promote`` differs from
the original only in the storageUri and model-version lines.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from components.common.settings import ComponentError

MODEL_VERSION = "sentimentops.io/model-version"
STABLE_VERSION = "sentimentops.io/stable-model-version"
STABLE_URI = "sentimentops.io/stable-storage-uri"
STABLE_DIGEST = "sentimentops.io/stable-model-digest"
MODEL_DIGEST = "sentimentops.io/model-digest"
DIGEST_ENV = "SENTIMENTOPS_EXPECTED_MODEL_DIGEST"
INT8_LOSS_ENV = "SENTIMENTOPS_INT8_ACCURACY_LOSS"
STABLE_INT8_LOSS = "sentimentops.io/stable-int8-accuracy-loss"
CANARY_PERCENT = "canaryTrafficPercent"


class ManifestError(ComponentError):
    """The overlay file is not in a shape the rollout can edit, or the edit is not allowed now."""


@dataclass(frozen=True)
class ManifestState:
    """What an overlay file says is served."""

    model_version: str | None
    storage_uri: str
    canary_percent: int | None = None
    stable_model_version: str | None = None
    stable_storage_uri: str | None = None
    model_digest: str | None = None
    stable_model_digest: str | None = None
    int8_accuracy_loss: str | None = None  # the served (canary) version's, from the predictor env
    stable_int8_accuracy_loss: str | None = None

    @property
    def in_canary(self) -> bool:
        """True while a canary is rolled out (promote or rollback pending)."""
        return self.canary_percent is not None


@dataclass(frozen=True)
class Edit:
    """The result of an edit: the new text and whether it differs from the input."""

    text: str
    changed: bool
    before: ManifestState
    after: ManifestState
    message: str


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold long URIs
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _load(text: str) -> CommentedMap:
    try:
        doc = _yaml().load(text)
    except Exception as exc:  # ruamel raises several unrelated error types
        raise ManifestError(f"overlay file is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(doc, CommentedMap) or doc.get("kind") != "InferenceService":
        raise ManifestError("overlay file is not an InferenceService patch")
    return doc


def _dump(doc: CommentedMap) -> str:
    out = io.StringIO()
    _yaml().dump(doc, out)
    return out.getvalue()


def _path(doc: CommentedMap, *keys: str) -> CommentedMap:
    node: Any = doc
    for key in keys:
        node = node.get(key) if isinstance(node, CommentedMap) else None
        if not isinstance(node, CommentedMap):
            raise ManifestError(f"overlay file has no mapping at {'.'.join(keys)}")
    return node


def _state(doc: CommentedMap) -> ManifestState:
    predictor = _path(doc, "spec", "predictor")
    model = _path(doc, "spec", "predictor", "model")
    uri = model.get("storageUri")
    if not isinstance(uri, str) or not uri:
        raise ManifestError("overlay file has no spec.predictor.model.storageUri")
    annotations = doc.get("metadata", {}).get("annotations") or {}
    percent = predictor.get(CANARY_PERCENT)
    if percent is not None and not isinstance(percent, int):
        raise ManifestError(f"{CANARY_PERCENT} must be an integer, got {percent!r}")

    def text(key: str) -> str | None:
        value = annotations.get(key)
        return None if value is None else str(value)

    annotated = text(MODEL_DIGEST)
    pinned = _env_digest(model)
    if annotated != pinned:
        raise ManifestError(
            f"annotation {MODEL_DIGEST} ({annotated}) and env {DIGEST_ENV} ({pinned}) disagree: "
            "fix the overlay by hand (docs/runbooks/canary.md)"
        )
    return ManifestState(
        model_version=text(MODEL_VERSION),
        storage_uri=uri,
        canary_percent=percent,
        stable_model_version=text(STABLE_VERSION),
        stable_storage_uri=text(STABLE_URI),
        model_digest=annotated,
        stable_model_digest=text(STABLE_DIGEST),
        int8_accuracy_loss=_env_value(model, INT8_LOSS_ENV),
        stable_int8_accuracy_loss=text(STABLE_INT8_LOSS),
    )


def _env_list(model: CommentedMap) -> list[Any] | None:
    env = model.get("env")
    if env is None:
        return None
    if not isinstance(env, list) or not all(isinstance(item, dict) for item in env):
        raise ManifestError("spec.predictor.model.env must be a list of {name, value} mappings")
    return env


def _env_value(model: CommentedMap, name: str) -> str | None:
    for item in _env_list(model) or []:
        if item.get("name") == name:
            value = item.get("value")
            return None if value is None else str(value)
    return None


def _env_digest(model: CommentedMap) -> str | None:
    return _env_value(model, DIGEST_ENV)


def _set_env(model: CommentedMap, name: str, value: str | None, after: str | None = None) -> None:
    """Set the predictor env entry ``name`` in place (quoted), or remove it when ``value`` is None. A new
    entry goes right after entry ``after`` (else last); the env list is created after storageUri when
    missing and removed when it ends up empty."""
    env = _env_list(model)
    for i, item in enumerate(env or []):
        if item.get("name") == name:
            if value is None:
                del env[i]
                if not env:
                    del model["env"]
            else:
                item["value"] = _quoted(value)
            return
    if value is None:
        return
    if env is None:
        env = CommentedSeq()
        _insert_after(model, "storageUri", "env", env)
    entry = CommentedMap()
    entry["name"] = name
    entry["value"] = _quoted(value)
    position = next((i + 1 for i, item in enumerate(env) if item.get("name") == after), len(env))
    env.insert(position, entry)


def _set_int8_loss(doc: CommentedMap, loss: str | None) -> None:
    """The predictor env's int8 loss for the model it serves: set (right after the digest), or removed."""
    _set_env(_path(doc, "spec", "predictor", "model"), INT8_LOSS_ENV, loss, after=DIGEST_ENV)


def _set_digest(doc: CommentedMap, digest: str) -> None:
    """Pin ``digest`` in the annotation and in the predictor's env (created after storageUri if absent)."""
    _insert_after(_annotations(doc), MODEL_VERSION, MODEL_DIGEST, _quoted(digest))
    _set_env(_path(doc, "spec", "predictor", "model"), DIGEST_ENV, digest)


def _drop_digest(doc: CommentedMap) -> None:
    _annotations(doc).pop(MODEL_DIGEST, None)
    _set_env(_path(doc, "spec", "predictor", "model"), DIGEST_ENV, None)


def read_state(text: str) -> ManifestState:
    """Parse an overlay file's rollout state."""
    return _state(_load(text))


def _annotations(doc: CommentedMap) -> CommentedMap:
    metadata = _path(doc, "metadata")
    annotations = metadata.get("annotations")
    if annotations is None:
        annotations = CommentedMap()
        metadata["annotations"] = annotations
    if not isinstance(annotations, CommentedMap):
        raise ManifestError("metadata.annotations must be a mapping")
    return annotations


def _insert_after(mapping: CommentedMap, after: str, key: str, value: Any) -> None:
    """Set ``key`` right after ``after`` (or at the end), keeping an existing key where it is."""
    if key in mapping:
        mapping[key] = value
        return
    keys = list(mapping.keys())
    position = keys.index(after) + 1 if after in keys else len(keys)
    mapping.insert(position, key, value)


def _insert_before(mapping: CommentedMap, before: str, key: str, value: Any) -> None:
    if key in mapping:
        mapping[key] = value
        return
    keys = list(mapping.keys())
    mapping.insert(keys.index(before) if before in keys else len(keys), key, value)


def _quoted(value: str) -> DoubleQuotedScalarString:
    return DoubleQuotedScalarString(value)


def _result(text: str, doc: CommentedMap, before: ManifestState, message: str) -> Edit:
    new_text = _dump(doc)
    return Edit(new_text, new_text != text, before, read_state(new_text), message)


def _unchanged(text: str, state: ManifestState, message: str) -> Edit:
    return Edit(text, False, state, state, message)


def with_canary(
    text: str, version: str, storage_uri: str, percent: int, digest: str, int8_loss: str | None = None
) -> Edit:
    """Roll ``version`` (at ``storage_uri``, registry digest ``digest``) out as a canary taking ``percent`` %
    of the traffic; the digest is pinned next to the storageUri (annotation and predictor env), and so is
    its recorded int8 accuracy loss ``int8_loss`` (None: not recorded, the env is left out).

    A no-op when that canary is already there (same version, URI and percent) or when the version is
    already the served model. Changing only the percent of the running canary is allowed (a ramp);
    proposing a different version while a canary runs is refused: promote or roll back first.
    """
    if not 0 < percent < 100:
        raise ManifestError(f"canary traffic percent must be between 1 and 99, got {percent}")
    doc = _load(text)
    state = _state(doc)
    if state.in_canary:
        if state.model_version != version or state.storage_uri != storage_uri or state.model_digest != digest:
            raise ManifestError(
                f"a canary of version {state.model_version} is already rolled out; "
                f"promote or roll it back before proposing version {version}"
            )
        if state.canary_percent == percent:
            return _unchanged(text, state, f"canary of version {version} at {percent}% already proposed")
        _path(doc, "spec", "predictor")[CANARY_PERCENT] = percent
        return _result(text, doc, state, f"canary of version {version} now takes {percent}% of traffic")
    if state.model_version == version or state.storage_uri == storage_uri:
        if state.model_version != version or state.storage_uri != storage_uri or state.model_digest != digest:
            raise ManifestError(
                f"the overlay serves version {state.model_version} at {state.storage_uri} (digest "
                f"{state.model_digest}), which only partly matches version {version} at {storage_uri} "
                f"(digest {digest}): fix the overlay by hand (docs/runbooks/canary.md)"
            )
        return _unchanged(text, state, f"version {version} is already the served model: nothing to propose")
    if state.model_version is None:
        raise ManifestError(f"overlay file has no {MODEL_VERSION} annotation: cannot record the stable model")

    annotations = _annotations(doc)
    annotations[MODEL_VERSION] = _quoted(version)
    _insert_after(annotations, MODEL_VERSION, STABLE_VERSION, _quoted(state.model_version))
    _insert_after(annotations, STABLE_VERSION, STABLE_URI, state.storage_uri)
    if state.model_digest is not None:
        _insert_after(annotations, STABLE_URI, STABLE_DIGEST, _quoted(state.model_digest))
    if state.int8_accuracy_loss is not None:
        _insert_after(annotations, STABLE_DIGEST, STABLE_INT8_LOSS, _quoted(state.int8_accuracy_loss))
    _set_digest(doc, digest)
    _set_int8_loss(doc, int8_loss)
    predictor = _path(doc, "spec", "predictor")
    _insert_before(predictor, "model", CANARY_PERCENT, percent)
    _path(doc, "spec", "predictor", "model")["storageUri"] = storage_uri
    return _result(
        text,
        doc,
        state,
        f"canary of version {version} proposed at {percent}% (stable: version {state.model_version})",
    )


def pin_digest(text: str, digest: str) -> str:
    """``text`` with ``digest`` pinned (annotation and predictor env) for the model it serves now: to
    bring an overlay written before digests were pinned under the rule, by hand or in a test."""
    doc = _load(text)
    _set_digest(doc, digest)
    return _dump(doc)


def _drop_canary(doc: CommentedMap) -> None:
    _path(doc, "spec", "predictor").pop(CANARY_PERCENT, None)
    annotations = _annotations(doc)
    annotations.pop(STABLE_VERSION, None)
    annotations.pop(STABLE_URI, None)
    annotations.pop(STABLE_DIGEST, None)
    annotations.pop(STABLE_INT8_LOSS, None)


def promoted(text: str) -> Edit:
    """The canary takes all traffic: it stays in storageUri, the canary fields go. No-op when steady."""
    doc = _load(text)
    state = _state(doc)
    if not state.in_canary:
        return _unchanged(text, state, f"no canary rolled out: version {state.model_version} already serves")
    _drop_canary(doc)
    return _result(text, doc, state, f"version {state.model_version} promoted to 100% of traffic")


def rolled_back(text: str) -> Edit:
    """The stable model takes all traffic again: the file is as it was before ``with_canary``."""
    doc = _load(text)
    state = _state(doc)
    if not state.in_canary:
        return _unchanged(text, state, f"no canary rolled out: version {state.model_version} already serves")
    if not state.stable_storage_uri or not state.stable_model_version:
        raise ManifestError(
            f"canary without {STABLE_VERSION}/{STABLE_URI} annotations: cannot tell what to roll back to"
        )
    _drop_canary(doc)
    if state.stable_model_digest is None:
        _set_int8_loss(doc, None)
        _drop_digest(doc)  # the stable model had no pinned digest: the predictor refuses it (fail closed)
    else:
        _set_digest(doc, state.stable_model_digest)
        _set_int8_loss(doc, state.stable_int8_accuracy_loss)
    annotations = _annotations(doc)
    annotations[MODEL_VERSION] = _quoted(state.stable_model_version)
    _path(doc, "spec", "predictor", "model")["storageUri"] = state.stable_storage_uri
    return _result(
        text,
        doc,
        state,
        f"canary of version {state.model_version} rolled back to version {state.stable_model_version}",
    )
