"""Grafana dashboards, generated with grafana-foundation-sdk (``python -m monitoring.grafana.build``)."""
