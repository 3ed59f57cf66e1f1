"""``process_*`` metrics (CPU, memory, open files, start time) of every process of a
``bookshelf serve --workers N`` group.

prometheus_client's multiprocess mode aggregates the samples the workers write to files, and
has no such files for process metrics, so they would vanish with several workers. Instead,
each worker leaves its pid in the shared metrics folder when it starts (and ``bookshelf serve``
its supervisor's, when it creates the folder), and whichever worker answers a scrape reads
``/proc`` for every listed process still alive, labelled ``pid`` and ``role`` (``worker`` or
``supervisor``). Cardinality stays bounded: one set of series per process of the group.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import ProcessCollector
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

WORKER = "worker"
SUPERVISOR = "supervisor"
PID_FILE_SUFFIX = ".pid"


def register_serving_process(metrics_directory: str, role: str = WORKER) -> None:
    """Say, in the shared folder, that this process belongs to the group (idempotent)."""
    Path(metrics_directory, f"{os.getpid()}.{role}{PID_FILE_SUFFIX}").touch()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def serving_processes(metrics_directory: str) -> list[tuple[int, str]]:
    """The processes that registered and still run, with their role; the pid files of dead
    ones are removed, so a worker the supervisor replaced stops being reported."""
    members = []
    for path in Path(metrics_directory).glob(f"*{PID_FILE_SUFFIX}"):
        pid, _, role = path.name.removesuffix(PID_FILE_SUFFIX).partition(".")
        if _alive(int(pid)):
            members.append((int(pid), role))
        else:
            path.unlink(missing_ok=True)
    return sorted(members)


def _labelled(families: Iterable[Metric], merged: dict[str, Metric], **labels: str) -> None:
    for family in families:
        target = merged.setdefault(
            family.name, Metric(family.name, family.documentation, family.type, family.unit)
        )
        for sample in family.samples:
            target.add_sample(sample.name, {**sample.labels, **labels}, sample.value)


class ServingProcessesCollector(Collector):
    """The process metrics of every live process of the group."""

    def __init__(self, metrics_directory: str) -> None:
        self.metrics_directory = metrics_directory

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for pid, role in serving_processes(self.metrics_directory):
            # registry=None: a throw-away reader of /proc/<pid>, registered nowhere.
            reader = ProcessCollector(pid=lambda pid=pid: pid, registry=None)  # type: ignore[misc]
            _labelled(reader.collect(), merged, pid=str(pid), role=role)
        return iter(merged.values())
