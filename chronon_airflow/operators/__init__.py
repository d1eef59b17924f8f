"""Airflow operators of chronon-airflow."""
