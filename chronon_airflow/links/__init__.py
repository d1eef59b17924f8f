"""Operator extra links: buttons on a task instance that open the external system's page.

A provider part (``extra-links`` in :mod:`chronon_airflow.provider`), below the operators and
sensors that declare them. A link builds its URL from XCom the task or its upstream task pushed:
it never loads the Chronon repo, so the API server can compute it cheaply.
"""
