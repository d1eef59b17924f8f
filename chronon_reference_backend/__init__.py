"""Reference CHIP-9 model backend: a small FastAPI service that implements the HTTP contract in
``openapi.json`` with real scikit-learn models, SQLite state and the local parquet warehouse.

It is a *service*, not orchestration code: nothing in the Airflow side imports it. Start it with
``chronon-airflow backend serve`` (or ``python -m chronon_reference_backend serve``).
"""
