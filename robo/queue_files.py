"""Adding a file of work items to a queue (``robo queue add``).

A file is read exactly as a run reads its input (:func:`robo.runner.workitems.read_items`:
every row needs a unique, non-empty reference, or nothing is added), with the
reference field of the process whose queue it is. Then the items go through
:meth:`robo.queues.Queues.add`: a reference the queue already holds is refused and
reported with the earlier item, the rest of the file is added.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from robo.definition import ItemSource, ProcessDefinition
from robo.errors import InputError, QueueError, RegistryError
from robo.queues import NewItem, Queues, Refusal
from robo.registry import Registry
from robo.runner.workitems import read_items, reference_of

FileKind = Literal["csv", "xlsx", "json"]
SUFFIXES: dict[str, FileKind] = {".csv": "csv", ".xlsx": "xlsx", ".json": "json"}


@dataclass(frozen=True)
class FileAdded:
    """What ``robo queue add`` did with a file."""

    queue: str
    file: str
    reference_field: str
    processes: list[str]  # the processes that take their items from this queue
    read: int
    added: list[int]
    refused: list[Refusal]


def queue_owners(registry: Registry, queue: str) -> list[ProcessDefinition]:
    """The active definitions (as this region runs them) that take items from ``queue``."""
    owners = []
    for process_id in registry.process_ids():
        try:
            definition = registry.active(process_id).definition
        except RegistryError:  # no active version: it takes nothing from any queue
            continue
        if definition.queue_name == queue:
            owners.append(definition)
    return owners


def add_file(
    queues: Queues,
    registry: Registry,
    queue: str,
    path: Path,
    *,
    reference: str | None = None,
    priority: int = 0,
    deadline: dt.datetime | None = None,
) -> FileAdded:
    """Read ``path`` (CSV, XLSX or JSON) and add its items to ``queue``.

    ``queue`` may also be a process id: its process's queue. The reference field is
    the definition's ``items.reference`` unless ``reference`` is given; a queue no
    process takes from needs ``reference``. The format comes from the file's
    extension, else from the definition's ``items.source``. Nothing is added if any
    row is unusable (:class:`~robo.errors.InputError`).
    """
    owners = queue_owners(registry, queue)
    if not owners and queue in registry.process_ids():
        queue = registry.active(queue).definition.queue_name  # a process id: its queue
        owners = queue_owners(registry, queue)
    if not owners and queue not in {s.name for s in queues.summaries()}:
        raise QueueError(
            f"no queue '{queue}', and no process takes its items from a queue of that name; "
            "`robo queue list` shows the queues (a process's queue is its id unless its "
            "definition names one under queue.name)"
        )
    field = reference or _reference_field(queue, owners)
    source = _item_source(path, field, owners)
    rows = read_items(source, path)
    if not rows:
        raise InputError(f"{path}: no items in the file; nothing was added to queue '{queue}'")
    items = [
        NewItem(reference_of(row, field), dict(row), priority=priority, deadline=deadline)
        for row in rows
    ]
    result = queues.add(
        queue,
        items,
        source=f"robo queue add {path.name}",
        unique=owners[0].queue.unique if owners else None,
    )
    return FileAdded(
        queue=queue,
        file=str(path),
        reference_field=field,
        processes=[d.id for d in owners],
        read=len(rows),
        added=result.added,
        refused=result.refused,
    )


def _reference_field(queue: str, owners: list[ProcessDefinition]) -> str:
    if not owners:
        raise QueueError(
            f"no process takes its items from queue '{queue}', so robo cannot tell which "
            "field of the file is each item's reference; name it: --reference FIELD"
        )
    fields = sorted({d.items.reference for d in owners})
    if len(fields) > 1:
        named = ", ".join(f"{d.id}: {d.items.reference}" for d in owners)
        raise QueueError(
            f"the processes taking items from queue '{queue}' name different reference "
            f"fields ({named}); choose one: --reference FIELD"
        )
    return fields[0]


def _item_source(path: Path, field: str, owners: list[ProcessDefinition]) -> ItemSource:
    from_file = [d.items for d in owners if d.items.source in SUFFIXES.values()]
    suffix = path.suffix.lower()
    if suffix in SUFFIXES:
        kind: str = SUFFIXES[suffix]
    elif from_file:
        kind = from_file[0].source  # csv, xlsx or json: a file like the process's own input
    else:
        raise InputError(
            f"{path}: cannot tell the format from the extension '{path.suffix}'; "
            "name the file .csv, .xlsx or .json"
        )
    sheet = next((s.sheet for s in from_file if s.source == "xlsx"), None)
    return ItemSource.model_validate(
        {"source": kind, "reference": field, "sheet": sheet if kind == "xlsx" else None}
    )
