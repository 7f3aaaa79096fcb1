"""Monitoring: the drift job, Prometheus rules, Alertmanager routing, Grafana dashboards, retrain trigger."""
