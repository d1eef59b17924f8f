"""The local demo stack: real Airflow 3 processes (api-server, scheduler, dag-processor, triggerer,
each a process of its own, all on loopback), the reference model backend and an SMTP sink, started
from one workspace and stopped by PID.

* :mod:`.stack` starts, finds and stops the processes (one state file of PIDs per workspace);
* :mod:`.distributed` is the distributed topology on the same tracking (PostgreSQL, Redis,
  CeleryExecutor with one worker per queue, a Spark standalone cluster), :mod:`.topology` the
  settings it shares with ``docker-compose.yaml``, :mod:`.logserver` Airflow's log server on
  loopback addresses (both topologies);
* :mod:`.client` talks to Airflow's REST API v2 (JWT from the simple auth manager);
* :mod:`.mail` is the SMTP sink that keeps every message as a file;
* :mod:`.summary` reads the parquet warehouse back;
* :mod:`.run` is ``make demo``: start, trigger, follow, summarise (``python -m chronon_demo``), with
  an optional injected batch-job failure and its recovery (``--fail-batch-job``, ``recover``).

The end-to-end and browser tests use the same :class:`~.stack.Stack`, so there is one
implementation of process orchestration.
"""
