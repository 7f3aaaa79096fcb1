"""The data-quality gate: clean first (every dropped row quarantined with its reason), then judge.

The Great Expectations suites judge the shares dropped (each reason against its own bound), the cleaned
rows (schema, lengths, labels, uniqueness, balance), the classes (the task's declared label set, a minimum
count per class, each class's share), the splits (no text of validation/test in train, no group such as a
film in two splits) and the split sizes. Only when all pass is the canonical dataset written, with the
task's ``label_map.json`` beside it.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd
from pydantic import Field

from components.common import data, labels
from components.common.artifacts import atomic_write_bytes, atomic_write_json, is_remote, local_path
from components.common.settings import GateFailed, TrackingSettings

DATASET_FILE = "dataset.parquet"
SUMMARY_FILE = "dataset.json"
QUARANTINE_FILE = "quarantine.parquet"
REPORT_JSON = "validation.json"
REPORT_HTML = "validation.html"
EXAMPLES_PER_REASON = 5


class ValidateSettings(TrackingSettings):
    """Inputs, cleaning rules and thresholds of the validation gate."""

    dataset_uri: str = Field(data.HUB_DATASET_ID, description="CSV/parquet path, gs:// URI or hub id")
    output_dir: str = Field("artifacts/validated", description="where the dataset artifact and reports go")
    seed: int = Field(42, description="seed for the split when the source has none")
    validation_fraction: float = Field(
        0.1, ge=0, lt=1, description="rows for validation when the source has no split"
    )
    test_fraction: float = Field(0.1, ge=0, lt=1, description="rows for test when the source has no split")
    min_text_chars: int = Field(2, description="cleaned texts shorter than this are quarantined (too_short)")
    max_text_chars: int = Field(
        2000, description="cleaned texts longer than this are quarantined (too_long; serving rejects them)"
    )
    max_empty_share: float = Field(0.10, ge=0, le=1, description="largest share of rows dropped as empty")
    max_invalid_label_share: float = Field(
        0.001, ge=0, le=1, description="largest share dropped for a label other than 0/1"
    )
    max_invalid_split_share: float = Field(
        0.001, ge=0, le=1, description="largest share dropped for an unknown split name"
    )
    max_too_short_share: float = Field(0.01, ge=0, le=1, description="largest share dropped as too short")
    max_too_long_share: float = Field(0.01, ge=0, le=1, description="largest share dropped as too long")
    max_conflicting_label_share: float = Field(
        0.01,
        ge=0,
        le=1,
        description="largest share dropped because the same text carries both labels (tie, or the minority label)",
    )
    max_duplicate_share: float = Field(
        0.10, ge=0, le=1, description="largest share dropped as repeats of a kept text"
    )
    max_dropped_share: float = Field(
        0.25, ge=0, le=1, description="largest share dropped for all reasons together"
    )
    labels: str = Field(
        ",".join(labels.BINARY_NAMES), description="the task's class names in id order, comma-separated"
    )
    label_map: str = Field(
        "", description="label_map.json path/URI with the task's classes (overrides labels)"
    )
    kaggle_label: Literal["review_type", "review_score"] = Field(
        "review_type",
        description="Kaggle critic reviews: label from Fresh/Rotten, or 5 classes score-1..score-5 from the score",
    )
    min_positive_share: float = Field(0.35, description="two classes: smallest share of class 1")
    max_positive_share: float = Field(0.65, description="two classes: largest share of class 1")
    min_class_count: int = Field(1, ge=0, description="fewest rows of every declared class (smoke: scaled)")
    min_class_share: float = Field(
        0.01, ge=0, le=1, description="more than two classes: smallest class share"
    )
    max_class_share: float = Field(0.9, ge=0, le=1, description="more than two classes: largest class share")
    min_train_rows: int = 4000
    min_eval_rows: int = Field(500, description="minimum rows in validation and in test")
    smoke: bool = Field(False, description="use the stratified <1% smoke subset (CI)")
    track: bool = Field(True, description="log the run to MLflow")

    def label_map_value(self) -> labels.LabelMap:
        """The task's declared classes (LabelMapError when the map cannot be read or is malformed)."""
        return labels.resolve(self.labels, self.label_map)

    def share_bounds(self) -> dict[str, float]:
        bounds = {reason: float(getattr(self, f"max_{reason}_share")) for reason in data.DROP_REASONS}
        return {**bounds, "dropped": self.max_dropped_share}


@dataclass
class ValidationResult:
    """Outcome of the gate, with one line per failed expectation."""

    success: bool
    failures: list[str]
    checks: list[dict[str, Any]]
    dataset_hash: str | None
    split_sizes: dict[str, int]
    output_dir: str
    cleaning: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return "; ".join(self.failures) if self.failures else "all checks passed"


def _min_class_count(settings: ValidateSettings) -> int:
    # The smoke subset keeps SMOKE_FRACTION of every class (at least a few rows), so the minimum shrinks too.
    if not settings.smoke:
        return settings.min_class_count
    return min(settings.min_class_count, max(1, int(settings.min_class_count * data.SMOKE_FRACTION)))


def _suites(
    settings: ValidateSettings, has_group: bool, label_map: labels.LabelMap | None = None
) -> dict[str, Any]:
    import great_expectations as gx

    label_map = label_map or labels.LabelMap.binary()

    ex = gx.expectations
    dropped = gx.ExpectationSuite(name="dropped_shares")
    for reason, bound in settings.share_bounds().items():
        dropped.add_expectation(ex.ExpectColumnValuesToBeBetween(column=f"{reason}_share", max_value=bound))

    rows = gx.ExpectationSuite(name="cleaned_rows")
    for expectation in (
        ex.ExpectColumnValuesToNotBeNull(column="text"),
        ex.ExpectColumnValueLengthsToBeBetween(
            column="text", min_value=settings.min_text_chars, max_value=settings.max_text_chars
        ),
        ex.ExpectColumnValuesToBeUnique(column="text"),
        ex.ExpectColumnValuesToBeInSet(column="label", value_set=list(range(label_map.num_classes))),
        ex.ExpectColumnValuesToBeInSet(column="split", value_set=list(data.SPLITS)),
    ):
        rows.add_expectation(expectation)
    if label_map.num_classes == 2:  # binary balance: the share of class 1 (the mean label), as always
        rows.add_expectation(
            ex.ExpectColumnMeanToBeBetween(
                column="label", min_value=settings.min_positive_share, max_value=settings.max_positive_share
            )
        )

    classes = gx.ExpectationSuite(name="class_balance")
    classes.add_expectation(
        ex.ExpectColumnValuesToBeBetween(column="count", min_value=_min_class_count(settings))
    )
    if label_map.num_classes > 2:
        classes.add_expectation(
            ex.ExpectColumnValuesToBeBetween(
                column="share", min_value=settings.min_class_share, max_value=settings.max_class_share
            )
        )

    leakage = gx.ExpectationSuite(name="split_leakage")
    leakage.add_expectation(ex.ExpectColumnValuesToBeInSet(column="text_in_train", value_set=[False]))
    if has_group:
        leakage.add_expectation(
            ex.ExpectColumnValuesToBeInSet(column="group_in_two_splits", value_set=[False])
        )

    # The smoke subset keeps SMOKE_FRACTION of every split, so its minimums shrink by the same factor.
    scale = data.SMOKE_FRACTION if settings.smoke else 1.0
    sizes = gx.ExpectationSuite(name="split_sizes")
    for split, minimum in (
        ("train", settings.min_train_rows),
        ("validation", settings.min_eval_rows),
        ("test", settings.min_eval_rows),
    ):
        sizes.add_expectation(
            ex.ExpectColumnValuesToBeBetween(column=f"{split}_rows", min_value=int(minimum * scale))
        )
    return {
        "dropped_shares": dropped,
        "cleaned_rows": rows,
        "class_balance": classes,
        "split_leakage": leakage,
        "split_sizes": sizes,
    }


def class_frame(frame: pd.DataFrame, label_map: labels.LabelMap) -> pd.DataFrame:
    """One row per declared class: its name, rows and share of the cleaned dataset."""
    counts = frame["label"].value_counts()
    total = max(len(frame), 1)
    rows = [int(counts.get(i, 0)) for i in range(label_map.num_classes)]
    return pd.DataFrame({"class": list(label_map.names), "count": rows, "share": [r / total for r in rows]})


def _describe_classes(check: dict[str, Any], classes: pd.DataFrame, settings: ValidateSettings) -> str:
    """Name the classes that broke a class_balance expectation (GX reports values, not which class)."""
    if check["kwargs"].get("column") == "count":
        minimum = _min_class_count(settings)
        low = classes[classes["count"] < minimum]
        named = ", ".join(f"{c!r} {n:,}" for c, n in zip(low["class"], low["count"], strict=True))
        return f"class(es) below min_class_count {minimum:,} rows: {named}"
    outside = classes[
        (classes["share"] < settings.min_class_share) | (classes["share"] > settings.max_class_share)
    ]
    named = ", ".join(f"{c!r} {s:.2%}" for c, s in zip(outside["class"], outside["share"], strict=True))
    return (
        f"class share outside min_class_share {settings.min_class_share:.2%}..max_class_share "
        f"{settings.max_class_share:.2%}: {named}"
    )


class _Runner:
    """One ephemeral GX context for every suite of a run."""

    def __init__(self) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.context = gx.get_context(mode="ephemeral")  # must exist before suites are built
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep step logs readable
        self.source = self.context.data_sources.add_pandas("frames")

    def run(self, suite: Any, frame: pd.DataFrame) -> list[dict[str, Any]]:
        asset = self.source.add_dataframe_asset(name=suite.name)
        batch = asset.add_batch_definition_whole_dataframe(f"{suite.name}_batch").get_batch(
            batch_parameters={"dataframe": frame}
        )
        checks = []
        for result in batch.validate(suite).results:
            config = result.expectation_config
            kwargs = {k: v for k, v in config.kwargs.items() if k not in {"batch_id"}}
            observed = result.result.get("observed_value", result.result.get("unexpected_percent"))
            checks.append(
                {
                    "suite": suite.name,
                    "expectation": config.type,
                    "kwargs": kwargs,
                    "success": bool(result.success),
                    "observed": observed,
                    "unexpected_count": result.result.get("unexpected_count"),
                    "partial_unexpected": [
                        str(v)[:200] for v in result.result.get("partial_unexpected_list", [])[:5]
                    ],
                }
            )
        return checks


def _describe_failure(check: dict[str, Any], bounds: dict[str, float]) -> str:
    kwargs = check["kwargs"]
    column = kwargs.get("column", "table")
    if check["suite"] == "dropped_shares":
        reason = column.removesuffix("_share")
        share = float(check["partial_unexpected"][0]) if check["partial_unexpected"] else float("nan")
        setting = "max_dropped_share" if reason == "dropped" else f"max_{reason}_share"
        what = "dropped (all reasons)" if reason == "dropped" else f"dropped as {reason}"
        return f"share of rows {what} {share:.2%} exceeds {setting} {bounds[reason]:.2%}"
    detail = f"observed {check['observed']!r}"
    if check.get("unexpected_count"):
        detail = f"{check['unexpected_count']} unexpected value(s), e.g. {check['partial_unexpected'][:3]!r}"
    return f"{check['expectation']} failed on {column}: {detail}"


def _leakage_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per validation/test row: does its text occur in train; is its group in two splits."""
    is_train = frame["split"] == "train"
    held_out = frame[~is_train]
    out = pd.DataFrame({"text_in_train": held_out["text"].isin(frame.loc[is_train, "text"]).to_numpy()})
    if "group" in frame.columns:
        group = frame["group"].where(frame["group"] != "", None)
        splits_per_group = frame.assign(group=group).groupby("group")["split"].nunique()
        straddling = splits_per_group[splits_per_group > 1].index
        out["group_in_two_splits"] = held_out["group"].isin(straddling).to_numpy()
    if out.empty:  # GX needs a row to evaluate; a missing split is reported by split_sizes
        out = pd.DataFrame({c: [False] for c in out.columns})
    return out


def _cleaning_report(cleaning: data.CleaningResult, settings: ValidateSettings) -> dict[str, Any]:
    quarantine = cleaning.quarantine
    examples = {
        reason: [
            {"row": int(r.row), "label": str(r.label), "text": None if r.text is None else str(r.text)[:300]}
            for r in quarantine[quarantine["reason"] == reason].head(EXAMPLES_PER_REASON).itertuples()
        ]
        for reason in data.DROP_REASONS
    }
    dropped = sum(cleaning.counts.values())
    return {
        "input_rows": cleaning.input_rows,
        "kept_rows": cleaning.input_rows - dropped,
        "counts": cleaning.counts,
        "shares": {**cleaning.shares, "dropped": dropped / max(cleaning.input_rows, 1)},
        "bounds": settings.share_bounds(),
        "examples": examples,
        "quarantine_file": QUARANTINE_FILE,
    }


def render_html(result: ValidationResult) -> str:
    """A small standalone HTML report: rows dropped per reason with examples, then every check."""
    cleaning = result.cleaning
    reasons = ""
    if cleaning:
        for reason, count in cleaning["counts"].items():
            share, bound = cleaning["shares"][reason], cleaning["bounds"][reason]
            shown = "".join(
                f"<li>row {e['row']} (label {html.escape(e['label'])}): "
                + (f"<q>{html.escape(str(e['text']))}</q>" if (e["text"] or "").strip() else "<i>(empty)</i>")
                + "</li>"
                for e in cleaning["examples"].get(reason, [])
            )
            css = "fail" if share > bound else "ok"
            reasons += (
                f"<tr class={css}><td>{html.escape(reason)}</td><td>{count:,}</td><td>{share:.2%}</td>"
                f"<td>{bound:.2%}</td><td><ul>{shown}</ul></td></tr>"
            )
        total = cleaning["shares"]["dropped"]
        reasons = (
            f"<h2>Cleaning: {cleaning['input_rows']:,} rows in, {cleaning['kept_rows']:,} kept "
            f"({total:.2%} dropped, bound {cleaning['bounds']['dropped']:.2%})</h2>"
            f"<p>Every dropped row is in <code>{html.escape(cleaning['quarantine_file'])}</code> with its reason.</p>"
            "<table><tr><th>reason</th><th>rows</th><th>share</th><th>bound</th><th>examples</th></tr>"
            f"{reasons}</table>"
        )
    rows = "".join(
        f"<tr class={'ok' if c['success'] else 'fail'}><td>{'PASS' if c['success'] else 'FAIL'}</td>"
        f"<td>{html.escape(c.get('suite', ''))}</td>"
        f"<td>{html.escape(c['expectation'])}</td><td>{html.escape(str(c['kwargs']))}</td>"
        f"<td>{html.escape(str(c['observed']))}</td></tr>"
        for c in result.checks
    )
    status = "PASSED" if result.success else "FAILED"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Data validation</title>"
        "<style>td{padding:2px 8px;font-family:monospace;vertical-align:top}.fail{background:#fdd}"
        ".ok{background:#dfd}q{white-space:pre-wrap}</style>"
        f"</head><body><h1>Data validation {status}</h1><p>{html.escape(result.reason)}</p>"
        f"<p>dataset hash: {html.escape(str(result.dataset_hash))}; splits: {result.split_sizes}</p>{reasons}"
        "<h2>Checks</h2><table><tr><th>status</th><th>suite</th><th>expectation</th><th>arguments</th>"
        f"<th>observed</th></tr>{rows}</table></body></html>"
    )


def validate_dataset(settings: ValidateSettings) -> ValidationResult:
    """Clean, quarantine, run the gate; on success write the canonical dataset. Reports are written either way."""
    out = settings.output_dir.rstrip("/")
    if not is_remote(out):
        # A failed gate must not leave an earlier run's dataset for downstream steps to pick up.
        local_path(f"{out}/{DATASET_FILE}").unlink(missing_ok=True)
        local_path(f"{out}/{labels.LABEL_MAP_FILE}").unlink(missing_ok=True)
    failures: list[str] = []
    checks: list[dict[str, Any]] = []
    canonical: pd.DataFrame | None = None
    cleaning_report: dict[str, Any] = {}
    split_by = "source"
    label_map = labels.LabelMap.binary()
    try:
        label_map = settings.label_map_value()
        raw = data.read_raw(settings.dataset_uri, kaggle_label=settings.kaggle_label)
    except (data.DataError, labels.LabelMapError) as exc:
        raw, failures = None, [str(exc)]
    if raw is not None:
        missing = {"text", "label"} - set(raw.columns)
        if missing:
            failures.append(
                f"schema: missing required column(s) {', '.join(sorted(missing))}; found {list(raw.columns)}"
            )
    if raw is not None and not failures:
        cleaning = data.clean_rows(raw, settings.min_text_chars, settings.max_text_chars, label_map)
        del raw
        data.write_validated(cleaning.quarantine, f"{out}/{QUARANTINE_FILE}")
        cleaning_report = _cleaning_report(cleaning, settings)
        if "split" not in cleaning.cleaned.columns:
            split_by = "group" if "group" in cleaning.cleaned.columns else "label-stratified random"
        fractions = data.SplitFractions(validation=settings.validation_fraction, test=settings.test_fraction)
        canonical = data.finish_splits(cleaning.cleaned, seed=settings.seed, fractions=fractions)
        if settings.smoke:
            canonical = data.smoke_subset(canonical, seed=settings.seed)
        cleaning_report["split_by"] = split_by
        runner = _Runner()  # before the suites: GX needs an active context to build them
        suites = _suites(settings, has_group="group" in canonical.columns, label_map=label_map)
        classes = class_frame(canonical, label_map)
        shares = pd.DataFrame({f"{k}_share": [v] for k, v in cleaning_report["shares"].items()})
        sizes = pd.DataFrame({f"{s}_rows": [int((canonical["split"] == s).sum())] for s in data.SPLITS})
        checks += runner.run(suites["dropped_shares"], shares)
        checks += runner.run(suites["cleaned_rows"], canonical[["text", "label", "split"]])
        checks += runner.run(suites["class_balance"], classes)
        checks += runner.run(suites["split_leakage"], _leakage_frame(canonical))
        checks += runner.run(suites["split_sizes"], sizes)
        failures = [
            _describe_classes(c, classes, settings)
            if c["suite"] == "class_balance"
            else _describe_failure(c, settings.share_bounds())
            for c in checks
            if not c["success"]
        ]
        cleaning_report["classes"] = classes.to_dict(orient="records")
    summary = data.summarise(canonical, label_map) if canonical is not None and not failures else None
    result = ValidationResult(
        success=not failures,
        failures=failures,
        checks=checks,
        dataset_hash=summary.dataset_hash if summary else None,
        split_sizes=summary.split_sizes if summary else {},
        output_dir=out,
        cleaning=cleaning_report,
    )
    atomic_write_json(f"{out}/{REPORT_JSON}", {**asdict(result), "dataset_uri": settings.dataset_uri})
    atomic_write_bytes(f"{out}/{REPORT_HTML}", render_html(result).encode())
    if summary is not None and canonical is not None:
        data.write_validated(canonical, f"{out}/{DATASET_FILE}")
        atomic_write_bytes(f"{out}/{labels.LABEL_MAP_FILE}", label_map.to_json().encode())
        atomic_write_json(
            f"{out}/{SUMMARY_FILE}",
            {
                **asdict(summary),
                "source_uri": settings.dataset_uri,
                "smoke": settings.smoke,
                "split_by": split_by,
                "input_rows": cleaning_report["input_rows"],
                "dropped": cleaning_report["counts"],
                "labels": list(label_map.names),
                "label_map_sha256": label_map.sha256(),
                "class_counts": dict(
                    zip(classes["class"], classes["count"].astype(int).tolist(), strict=True)
                ),
            },
        )
    return result


def require_success(result: ValidationResult) -> None:
    """Raise the gate's one-line reason when validation failed."""
    if not result.success:
        raise GateFailed(f"validation gate failed: {result.reason}")
