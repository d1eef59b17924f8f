"""When a Chronon trigger polls: one interval after it starts, then every interval, and once more
right at its deadline. Shared by the batch-job and partition triggers.

A trigger waits one interval before its *first* poll too, for two reasons. The task polled just
before it deferred, so an immediate poll repeats it. And a trigger that fires within seconds of
the deferral races Airflow's handling of the deferring worker's exit: when the resumed attempt is
already running by the time the scheduler reads the executor's "success" for the exit, Airflow 3.3
fails the resumed attempt as killed externally (apache/airflow#72716, #71580; fix pending in
#71579), and the task waits a retry_delay for its next try. The worker's exit is reported within
seconds; the intervals (``[chronon] batch_job_poll_interval``, a sensor's ``poke_interval``) are
longer.
"""
from __future__ import annotations

import asyncio
import time


async def until_next_poll(poll_interval: float, deadline: float | None) -> None:
    """Sleep one ``poll_interval``, or until ``deadline`` (epoch seconds) when that comes first; not
    at all when the deadline has passed (a triggerer that restarts late still polls once)."""
    delay = poll_interval
    if deadline is not None:
        delay = min(delay, max(0.0, deadline - time.time()))
    await asyncio.sleep(delay)


def past(deadline: float | None) -> bool:
    """Whether ``deadline`` (epoch seconds, ``None``: none) has come."""
    return deadline is not None and time.time() >= deadline
