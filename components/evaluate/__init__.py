"""evaluate: score every model on the same held-out test split; challenger vs baseline vs champion."""
