"""Scale benchmarks (issue 7): a synthetic compiled-repo generator and the ``make bench`` harness.

``python -m chronon_bench --help`` runs the harness; :mod:`.generator` writes a repo.
"""
