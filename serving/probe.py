"""Fixed probe texts: used to warm the model up at load and to check a converted (ONNX, int8) model
against the original before it serves. Varied lengths, so both short and padded long batches run."""

from __future__ import annotations

PROBE_TEXTS: tuple[str, ...] = (
    "great",
    "a total mess",
    "funny, warm and wise",
    "tedious and far too long for what it has to say",
    "the plot is thin but the cast is charming enough to carry it",
    "an ambitious failure",
    "i laughed, i cried, i checked my watch twice",
    "a gripping, beautifully acted film that stays with you long after the credits roll",
    "not bad",
    "not good",
    "the director never decides whether this is a comedy or a thriller, and neither can we",
    "visually stunning yet emotionally empty, a postcard of a movie",
    "a small miracle of a film",
    "dull",
    "every scene feels rehearsed, every line recited rather than spoken, and the two leads share "
    "no chemistry whatsoever, which is fatal for a romance that asks us to believe in them",
    "smart, surprising and shot with real confidence by a first-time filmmaker",
)
