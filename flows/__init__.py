"""Prefect flows: they arrange the steps and make no SDK calls."""
