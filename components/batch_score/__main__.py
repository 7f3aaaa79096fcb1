"""batch-score: score a dataset with a registered (or local) model; predictions parquet beside the input."""

from components.batch_score.cli import main

main()
