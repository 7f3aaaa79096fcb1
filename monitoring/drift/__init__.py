"""Drift job: payload logs of a time window vs the reference data of the model version that served them."""
