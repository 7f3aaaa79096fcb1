"""MLflow behind its own basic-auth app: the identities, their grants, and the bootstrap that applies them.

The server runs ``mlflow server --app-name basic-auth`` with ``MLFLOW_AUTH_CONFIG_PATH`` pointing at an
ini file (``auth_config_ini``) whose ``default_permission`` is READ: every *authenticated* user may
read; an unauthenticated request is refused (401). Writers get EDIT on exactly what they write:

| identity (default name) | what it may change                                                        |
|-------------------------|---------------------------------------------------------------------------|
| ``admin``               | users and grants (the bootstrap job only)                                 |
| ``pipeline``            | the experiment (runs, artifacts) and the registered model (versions, tags, |
|                         | aliases): the retraining workflow                                          |
| ``rollout``             | the registered model (aliases, rollback tag): canary-analysis promote/rollback |
| ``reader``              | nothing (READ by default): drift job, batch-score, evaluate's champion look-up |

The predictor has no credentials (and, in the cluster, no route to MLflow). Clients read their identity
from MLflow's own ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``. The local default (SQLite
under ``mlruns/``, no server) needs none of this.

``python -m components.common.mlflow_auth bootstrap`` (admin credentials in ``MLFLOW_TRACKING_*``, the
others' passwords in ``SENTIMENTOPS_MLFLOW_<ROLE>_PASSWORD``) creates or updates the users, the experiment
and every task's registered model (``--registered-model`` and ``--other-registered-models``), and grants
EDIT; running it again changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pydantic import Field, SecretStr

from components.common.settings import ComponentError, TrackingSettings, run_cli

EDIT = "EDIT"
WRITER_ROLES = ("pipeline", "rollout")
ROLES = ("pipeline", "rollout", "reader")


def auth_config_ini(database_uri: str, default_permission: str = "READ") -> str:
    """The ``[mlflow]`` section of the server's auth config (``MLFLOW_AUTH_CONFIG_PATH``). The admin's
    name and password come from ``MLFLOW_AUTH_ADMIN_USERNAME`` / ``MLFLOW_AUTH_ADMIN_PASSWORD``."""
    return (
        "[mlflow]\n"
        f"default_permission = {default_permission}\n"
        f"database_uri = {database_uri}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n"
    )


class AuthBootstrapSettings(TrackingSettings):
    """Who exists on the MLflow server and what each may change."""

    pipeline_username: str = Field("pipeline", description="the retraining workflow's identity")
    pipeline_password: SecretStr | None = Field(None, description="env SENTIMENTOPS_PIPELINE_PASSWORD")
    rollout_username: str = Field("rollout", description="the canary rollout's identity")
    rollout_password: SecretStr | None = Field(None, description="env SENTIMENTOPS_ROLLOUT_PASSWORD")
    reader_username: str = Field("reader", description="read-only identity (drift job, batch-score)")
    reader_password: SecretStr | None = Field(None, description="env SENTIMENTOPS_READER_PASSWORD")
    other_registered_models: str = Field(
        "",
        description="comma-separated registered-model names of further tasks (a workflow's registered_model "
        "parameter, e.g. uci-source-sentiment): created and granted like --registered-model",
    )

    def registered_models(self) -> list[str]:
        """Every task's registered model: ``registered_model`` first, then the others, without repeats."""
        names = [self.registered_model, *(n.strip() for n in self.other_registered_models.split(","))]
        return list(dict.fromkeys(n for n in names if n))

    def identities(self) -> dict[str, tuple[str, str]]:
        """role -> (username, password); every password is required."""
        out = {}
        for role in ROLES:
            secret = getattr(self, f"{role}_password")
            if secret is None or len(secret.get_secret_value()) < 12:
                raise ComponentError(
                    f"--{role}-password (env SENTIMENTOPS_{role.upper()}_PASSWORD) must be set, 12+ characters"
                )
            out[role] = (getattr(self, f"{role}_username"), secret.get_secret_value())
        return out


@dataclass(frozen=True)
class BootstrapResult:
    created_users: tuple[str, ...]
    updated_users: tuple[str, ...]
    experiment_id: str
    grants: tuple[str, ...]


@contextmanager
def as_identity(username: str, password: str) -> Iterator[None]:
    """Make MLflow clients in this process act as ``username`` (restores the previous identity)."""
    keys = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(dict(zip(keys, (username, password), strict=True)))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def bootstrap(settings: AuthBootstrapSettings) -> BootstrapResult:
    """Create/update the users, the experiment and the registered model; grant the writers EDIT.

    Runs with the admin's ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``; idempotent.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.server.auth.client import AuthServiceClient
    from mlflow.server.auth.permissions import RESOURCE_TYPE_EXPERIMENT, RESOURCE_TYPE_REGISTERED_MODEL

    uri = settings.tracking_uri
    if not uri.startswith(("http://", "https://")):
        raise ComponentError(f"bootstrap needs an MLflow server URI (http[s]://...), got {uri!r}")
    identities = settings.identities()
    auth = AuthServiceClient(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    created, updated, grants = [], [], []
    for username, password in identities.values():
        try:
            auth.get_user(username)
        except MlflowException:
            auth.create_user(username, password)
            created.append(username)
        else:
            auth.update_user_password(username, password)
            updated.append(username)
    experiment = client.get_experiment_by_name(settings.experiment)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(settings.experiment)
    wanted = [(identities["pipeline"][0], RESOURCE_TYPE_EXPERIMENT, experiment_id)]
    # Every task's model: a retraining run of a second task registers under its own name, and its canary
    # moves that model's aliases; without the grant both are refused (default permission READ).
    for model in settings.registered_models():
        try:
            client.get_registered_model(model)
        except MlflowException:
            client.create_registered_model(model)
        wanted += [
            (identities["pipeline"][0], RESOURCE_TYPE_REGISTERED_MODEL, model),
            (identities["rollout"][0], RESOURCE_TYPE_REGISTERED_MODEL, model),
        ]
    for username, resource_type, resource_id in wanted:
        try:
            auth.grant_user_permission(username, resource_type, str(resource_id), EDIT)
        except MlflowException as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise
        grants.append(f"{username}: {EDIT} on {resource_type} {resource_id}")
    return BootstrapResult(tuple(created), tuple(updated), str(experiment_id), tuple(grants))


def main() -> None:
    import argparse

    from components.common.settings import add_settings_arguments, settings_from_args

    parser = argparse.ArgumentParser(prog="python -m components.common.mlflow_auth", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_settings_arguments(sub.add_parser("bootstrap", help="create users and grants"), AuthBootstrapSettings)
    args = parser.parse_args()
    result = bootstrap(settings_from_args(AuthBootstrapSettings, args))
    print(
        f"users created: {', '.join(result.created_users) or '-'}; updated: {', '.join(result.updated_users) or '-'}"
    )
    for grant in result.grants:
        print(f"grant {grant}")


if __name__ == "__main__":
    run_cli(main)
