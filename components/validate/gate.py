"""The data-quality gate: a Great Expectations suite over the raw data, then the canonical dataset artifact."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from pydantic import Field

from components.common import data as datalib
from components.common.artifacts import atomic_write_bytes, atomic_write_json, is_remote, local_path
from components.common.settings import GateFailed, TrackingSettings

DATASET_FILE = "dataset.parquet"
SUMMARY_FILE = "dataset.json"
REPORT_JSON = "validation.json"
REPORT_HTML = "validation.html"


class ValidateSettings(TrackingSettings):
    """Inputs and thresholds of the validation gate."""

    dataset_uri: str = Field(datalib.HUB_DATASET_ID, description="CSV/parquet path, gs:// URI or hub id")
    output_dir: str = Field("artifacts/validated", description="where the dataset artifact and reports go")
    seed: int = Field(42, description="seed for the split when the source has none")
    min_text_chars: int = 2
    max_text_chars: int = 2000
    max_empty_share: float = Field(0.001, description="largest tolerated share of null/empty texts")
    max_duplicate_share: float = 0.01
    min_positive_share: float = 0.35
    max_positive_share: float = 0.65
    min_train_rows: int = 4000
    min_eval_rows: int = Field(500, description="minimum rows in validation and in test")
    smoke: bool = Field(False, description="use the stratified <1% smoke subset (CI)")
    track: bool = Field(True, description="log the run to MLflow")


@dataclass
class ValidationResult:
    """Outcome of the gate, with one line per failed expectation."""

    success: bool
    failures: list[str]
    checks: list[dict[str, Any]]
    dataset_hash: str | None
    split_sizes: dict[str, int]
    output_dir: str

    @property
    def reason(self) -> str:
        return "; ".join(self.failures) if self.failures else "all checks passed"


def _expectation_suite(settings: ValidateSettings, has_split: bool) -> Any:
    import great_expectations as gx

    ex = gx.expectations
    suite = gx.ExpectationSuite(name="rotten_tomatoes")
    for expectation in (
        ex.ExpectColumnValuesToNotBeNull(column="text", mostly=1 - settings.max_empty_share),
        ex.ExpectColumnValueLengthsToBeBetween(
            column="text", min_value=settings.min_text_chars, max_value=settings.max_text_chars, mostly=0.999
        ),
        ex.ExpectColumnValuesToNotBeNull(column="label"),
        ex.ExpectColumnValuesToBeInSet(column="label", value_set=["0", "1"]),
        ex.ExpectColumnProportionOfUniqueValuesToBeBetween(
            column="text", min_value=1 - settings.max_duplicate_share, max_value=1.0
        ),
        ex.ExpectColumnMeanToBeBetween(
            column="label_numeric",
            min_value=settings.min_positive_share,
            max_value=settings.max_positive_share,
        ),
    ):
        suite.add_expectation(expectation)
    if has_split:
        suite.add_expectation(ex.ExpectColumnValuesToBeInSet(column="split", value_set=list(datalib.SPLITS)))
    return suite


def _split_suite(settings: ValidateSettings, smoke: bool) -> Any:
    import great_expectations as gx

    # The smoke subset keeps SMOKE_FRACTION of every split, so its minimums shrink by the same factor.
    scale = datalib.SMOKE_FRACTION if smoke else 1.0

    ex = gx.expectations
    suite = gx.ExpectationSuite(name="split_sizes")
    for split, minimum in (
        ("train", settings.min_train_rows),
        ("validation", settings.min_eval_rows),
        ("test", settings.min_eval_rows),
    ):
        suite.add_expectation(
            ex.ExpectColumnValuesToBeBetween(column=f"{split}_rows", min_value=int(minimum * scale))
        )
    return suite


def _run_suite(name: str, frame: pd.DataFrame, make_suite: Callable[[], Any]) -> list[dict[str, Any]]:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")  # must exist before the suite is built
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep step logs readable
    suite = make_suite()
    asset = context.data_sources.add_pandas(f"{name}_source").add_dataframe_asset(name=name)
    batch = asset.add_batch_definition_whole_dataframe(f"{name}_batch").get_batch(
        batch_parameters={"dataframe": frame}
    )
    outcome = batch.validate(suite)
    checks = []
    for result in outcome.results:
        config = result.expectation_config
        kwargs = {k: v for k, v in config.kwargs.items() if k not in {"batch_id"}}
        observed = result.result.get("observed_value", result.result.get("unexpected_percent"))
        checks.append(
            {
                "expectation": config.type,
                "kwargs": kwargs,
                "success": bool(result.success),
                "observed": observed,
                "unexpected_count": result.result.get("unexpected_count"),
                "partial_unexpected": result.result.get("partial_unexpected_list", [])[:5],
            }
        )
    return checks


def _describe_failure(check: dict[str, Any]) -> str:
    kwargs = check["kwargs"]
    column = kwargs.get("column", "table")
    detail = f"observed {check['observed']!r}"
    if check.get("unexpected_count"):
        detail = f"{check['unexpected_count']} unexpected value(s), e.g. {check['partial_unexpected'][:3]!r}"
    return f"{check['expectation']} failed on {column}: {detail}"


def _gx_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """The raw data as GX sees it: stripped text (empty -> null), labels as strings, numeric label copy."""
    frame = raw.copy()
    text = frame["text"].astype("string").str.strip()
    frame["text"] = text.mask(text == "", pd.NA).astype(object)
    frame["label"] = frame["label"].astype("string").str.strip().astype(object)
    frame["label_numeric"] = pd.to_numeric(frame["label"], errors="coerce")
    if "split" in frame.columns:
        frame["split"] = frame["split"].astype("string").str.strip().str.lower().astype(object)
    return frame


def render_html(result: ValidationResult) -> str:
    """A small standalone HTML report of every check."""
    rows = "".join(
        f"<tr class={'ok' if c['success'] else 'fail'}><td>{'PASS' if c['success'] else 'FAIL'}</td>"
        f"<td>{html.escape(c['expectation'])}</td><td>{html.escape(str(c['kwargs']))}</td>"
        f"<td>{html.escape(str(c['observed']))}</td></tr>"
        for c in result.checks
    )
    status = "PASSED" if result.success else "FAILED"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Data validation</title>"
        "<style>td{padding:2px 8px;font-family:monospace}.fail{background:#fdd}.ok{background:#dfd}</style>"
        f"</head><body><h1>Data validation {status}</h1><p>{html.escape(result.reason)}</p>"
        f"<p>dataset hash: {html.escape(str(result.dataset_hash))}; splits: {result.split_sizes}</p>"
        f"<table><tr><th>status</th><th>expectation</th><th>arguments</th><th>observed</th></tr>{rows}</table>"
        "</body></html>"
    )


def validate_dataset(settings: ValidateSettings) -> ValidationResult:
    """Run the gate; on success write the canonical dataset artifact. Reports are written either way."""
    out = settings.output_dir.rstrip("/")
    if not is_remote(out):
        # A failed gate must not leave an earlier run's dataset for downstream steps to pick up.
        local_path(f"{out}/{DATASET_FILE}").unlink(missing_ok=True)
    failures: list[str] = []
    checks: list[dict[str, Any]] = []
    cleaned: pd.DataFrame | None = None
    try:
        raw = datalib.read_raw(settings.dataset_uri)
    except datalib.DataError as exc:
        raw, failures = None, [str(exc)]
    if raw is not None:
        missing = {"text", "label"} - set(raw.columns)
        if missing:
            failures.append(
                f"schema: missing required column(s) {', '.join(sorted(missing))}; found {list(raw.columns)}"
            )
        else:
            has_split = "split" in raw.columns
            checks = _run_suite("rows", _gx_frame(raw), lambda: _expectation_suite(settings, has_split))
            failures = [_describe_failure(c) for c in checks if not c["success"]]
    if not failures:
        cleaned = datalib.clean(raw, seed=settings.seed)
        if settings.smoke:
            cleaned = datalib.smoke_subset(cleaned, seed=settings.seed)
        sizes = {f"{s}_rows": [int((cleaned["split"] == s).sum())] for s in datalib.SPLITS}
        split_checks = _run_suite(
            "splits", pd.DataFrame(sizes), lambda: _split_suite(settings, settings.smoke)
        )
        checks += split_checks
        failures = [_describe_failure(c) for c in split_checks if not c["success"]]
    summary = datalib.summarise(cleaned) if cleaned is not None and not failures else None
    result = ValidationResult(
        success=not failures,
        failures=failures,
        checks=checks,
        dataset_hash=summary.dataset_hash if summary else None,
        split_sizes=summary.split_sizes if summary else {},
        output_dir=out,
    )
    atomic_write_json(f"{out}/{REPORT_JSON}", {**asdict(result), "dataset_uri": settings.dataset_uri})
    atomic_write_bytes(f"{out}/{REPORT_HTML}", render_html(result).encode())
    if summary is not None and cleaned is not None:
        datalib.write_validated(cleaned, f"{out}/{DATASET_FILE}")
        atomic_write_json(f"{out}/{SUMMARY_FILE}", {**asdict(summary), "source_uri": settings.dataset_uri})
    return result


def require_success(result: ValidationResult) -> None:
    """Raise the gate's one-line reason when validation failed."""
    if not result.success:
        raise GateFailed(f"validation gate failed: {result.reason}")
