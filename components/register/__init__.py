"""register: the promotion gate and the MLflow registry (aliases challenger/champion, lineage tags)."""
