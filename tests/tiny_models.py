"""Build a tiny BERT sequence classifier with its own WordPiece tokenizer, for fast tests."""

from __future__ import annotations

from pathlib import Path


def build_tiny_checkpoint(
    texts: list[str],
    out_dir: Path,
    vocab_size: int = 2000,
    seed: int = 0,
    labels: tuple[str, ...] | None = None,
) -> Path:
    """Train a WordPiece vocab on ``texts`` and save a randomly initialised 2-layer BERT (~0.2M params) with
    one output per class of ``labels`` (named in its config), or two unnamed outputs by default."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    torch.manual_seed(seed)
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=1)
    out_dir.mkdir(parents=True, exist_ok=True)
    wordpiece.save_model(str(out_dir))
    tokenizer = BertTokenizerFast(vocab_file=str(out_dir / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(out_dir)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=len(labels) if labels else 2,
        **(
            {"id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)}}
            if labels
            else {}
        ),
    )
    BertForSequenceClassification(config).save_pretrained(out_dir)
    return out_dir
