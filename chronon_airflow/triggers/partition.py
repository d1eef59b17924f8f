"""ChrononPartitionTrigger: asks the partition catalog from the triggerer until every partition exists.

It lives in the installed package (the triggerer imports it by the path ``serialize()`` returns)
and builds its catalog again in the triggerer process from the catalog's name (``local``, ``hive``
or a dotted class path): nothing but names, dates and numbers is serialized. Each poll is one
``amissing_partitions`` call; partitions seen present are not asked about again. Catalog errors
are tolerated up to ``max_consecutive_errors`` in a row (a metastore blip); an error that cannot
get better (a catalog that cannot be built, a bad name: ValueError/TypeError) ends the wait at
once. The deadline is an absolute epoch time fixed when the sensor deferred, so a triggerer
restart does not extend it. The first check comes one interval after the start
(:mod:`chronon_airflow.triggers.pacing` says why).
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from chronon_airflow.triggers.pacing import past, until_next_poll

# Event "status" values the sensor's execute_complete understands.
EVENT_SUCCESS = "success"
EVENT_FAILED = "failed"  # the wait cannot succeed as configured (no such catalog, a bad name)
EVENT_ERROR = "error"  # the catalog kept failing: max_consecutive_errors polls in a row
EVENT_TIMEOUT = "timeout"

SHOWN = 5  # missing partitions named in a log line or message
EVENT_MISSING_MAX = 50  # missing partitions listed in an event (the count is always there)


def describe_missing(missing: list[str], total: int) -> str:
    """``3 of 30 partitions missing: 2024-01-01, 2024-01-02, 2024-01-03`` (first few + count)."""
    shown = ", ".join(missing[:SHOWN]) + (f" and {len(missing) - SHOWN} more" if len(missing) > SHOWN else "")
    return f"{len(missing)} of {total} partitions missing: {shown}"


def _pairs(subpartitions: Mapping[str, str] | Iterable[Iterable[str]] | None) -> list[list[str]]:
    if not subpartitions:
        return []
    items = subpartitions.items() if isinstance(subpartitions, Mapping) else subpartitions
    return [[str(k), str(v)] for k, v in items]


class ChrononPartitionTrigger(BaseTrigger):
    """Wait for ``table``'s ``<column>=<ds>[/<k>=<v>...]`` partitions for every ds in ``partitions``.

    ``subpartitions`` is ordered; it is serialized as a list of ``[key, value]`` pairs, so the order
    survives any JSON store. ``deadline`` is an epoch time (``None``: no deadline).
    """

    def __init__(self, table: str, partitions: list[str], *, column: str = "ds",
                 subpartitions: Mapping[str, str] | Iterable[Iterable[str]] | None = None,
                 catalog: str | None = None, poll_interval: float = 300.0, deadline: float | None = None,
                 max_consecutive_errors: int = 5):
        super().__init__()
        self.table = table
        self.partitions = list(partitions)
        self.column = column
        self.subpartitions = _pairs(subpartitions)
        self.catalog = catalog
        self.poll_interval = float(poll_interval)
        self.deadline = deadline
        self.max_consecutive_errors = max(1, int(max_consecutive_errors))

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "table": self.table,
                "partitions": list(self.partitions),
                "column": self.column,
                "subpartitions": [list(p) for p in self.subpartitions],
                "catalog": self.catalog,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "max_consecutive_errors": self.max_consecutive_errors,
            },
        )

    @property
    def what(self) -> str:
        """``ns.table/ds=*/hr=00:00`` for log lines and messages."""
        return "/".join([self.table, f"{self.column}=*", *(f"{k}={v}" for k, v in self.subpartitions)])

    def _event(self, status: str, message: str, missing: list[str] | None = None) -> TriggerEvent:
        missing = list(missing or [])
        return TriggerEvent({"status": status, "table": self.table, "message": message,
                             "missing": missing[:EVENT_MISSING_MAX], "missing_count": len(missing),
                             "partitions": len(self.partitions)})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from chronon_airflow.catalogs import get_catalog

        try:
            catalog = get_catalog(self.catalog)
        except Exception as e:  # unknown name, unimportable class, provider not installed
            yield self._event(EVENT_FAILED, f"partition catalog {self.catalog!r} for {self.what}: {e}",
                              self.partitions)
            return
        subpartitions = dict(self.subpartitions) or None
        remaining, errors = list(self.partitions), 0
        while True:
            await until_next_poll(self.poll_interval, self.deadline)  # not at once: see pacing.py
            try:
                missing = list(await catalog.amissing_partitions(self.table, remaining, self.column, subpartitions))
            except (ValueError, TypeError) as e:
                yield self._event(EVENT_FAILED, f"asking {type(catalog).__name__} for {self.what}: {e}", remaining)
                return
            except Exception as e:
                errors += 1
                self.log.warning("check %d/%d of %s failed: %s: %s", errors, self.max_consecutive_errors,
                                 self.what, type(e).__name__, e)
                if errors >= self.max_consecutive_errors:
                    yield self._event(EVENT_ERROR, f"gave up on {self.what} after {errors} consecutive catalog "
                                                   f"errors; last: {type(e).__name__}: {e}", remaining)
                    return
            else:
                errors = 0
                if not missing:
                    yield self._event(EVENT_SUCCESS, f"{self.what}: all {len(self.partitions)} partitions present")
                    return
                wanted = set(missing)
                remaining = [p for p in remaining if p in wanted]  # a partition seen present stays present
                self.log.info("%s: %s", self.what, describe_missing(remaining, len(self.partitions)))
            if past(self.deadline):
                still = describe_missing(remaining, len(self.partitions))
                yield self._event(EVENT_TIMEOUT, f"{self.what}: still {still} at the sensor's timeout", remaining)
                return
