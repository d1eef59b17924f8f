"""chronon-airflow: Airflow 3 DAGs for Chronon CHIP-9 model transforms."""
__version__ = "0.1.0"
