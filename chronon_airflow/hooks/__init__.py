"""Airflow hooks of chronon-airflow."""
