"""Airflow triggers of chronon-airflow (imported by the triggerer process, so they live in the package)."""
