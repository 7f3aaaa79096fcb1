"""Code shared by every component (and by serving and monitoring): config, data, artifacts, models, metrics."""
