"""Airflow sensors of chronon-airflow."""
