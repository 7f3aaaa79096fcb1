"""Prometheus rules (plain rule file = single source) and scrape configuration CRs."""
