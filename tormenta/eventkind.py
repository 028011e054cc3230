"""What an event kind declares: the plug-in interface of the ``kinds/`` folder.

A kind is one folder ``kinds/<folder>/`` (``kinds/__init__.py`` says what goes in it). Its
``contract.py`` holds ``KIND``, an :class:`EventKind`; this module is all that file imports, so the
core can discover the contracts (``tormenta.contracts.KINDS``) without importing anything above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ENVELOPE: dict[str, str] = {
    "schema": "string",
    "v": "long",
    "event_id": "string",
    "event_time": "long",
    "source": "string",
    "sent_at": "long",
}


@dataclass(frozen=True)
class EventKind:
    name: str  # value of the "schema" field
    version: int
    topic: str  # in the default namespace: "tormenta.<what>"
    key_field: str  # Kafka key: the source entity
    fields: dict[str, str]  # kind-specific field -> type ("string", "long", "double")
    max_bytes: int
    events_table: str  # logical name; row key "<salt>|<event_id>", family "d"
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    # Identifiers that end up in row keys: no '|' and no control characters (dead letter bad_id).
    ids: tuple[str, ...] = ()
    # The kind's own tables besides its events (logical name -> {family: options}), created with
    # the namespace's other tables.
    tables: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # Set by discovery: the kind's folder as a package ("kinds.social"); its parts live there.
    package: str = field(default="", compare=False)

    @property
    def id_fields(self) -> tuple[str, ...]:
        return ("event_id", self.key_field, *self.ids)

    @property
    def all_fields(self) -> dict[str, str]:
        return {**ENVELOPE, **self.fields}

    @property
    def folder(self) -> str:
        """The kind's folder name ("social"): its id in the DAG's Sources and the runner's commands."""
        return self.package.rsplit(".", 1)[-1]
