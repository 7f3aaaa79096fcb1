"""GitOps canary rollout of the sentiment predictor: propose, analyse, promote, roll back.

``python -m serving.rollout --help``; the runbook is docs/runbooks/canary.md. Each subcommand is a thin
CLI (``cli.py``) over pure functions that return typed results: ``manifest`` edits the overlay's
InferenceService patch, ``aliases`` reads and moves the registry aliases in MLflow, ``prometheus`` and ``analysis`` read and judge
the canary's metrics, ``actions`` composes them (and makes promote/rollback all-or-nothing).
"""
