"""train-baseline: TF-IDF (1-2 grams) + LogisticRegression, the floor every challenger must beat."""
