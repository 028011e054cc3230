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


EXPECTATION_ACTIONS = ("warn", "drop", "fail")


@dataclass(frozen=True)
class Expectation:
    """A named data-quality rule of a kind, beside its contract checks (which stay as they are).

    ``sql``: a Spark SQL condition over the kind's typed fields, true when a record meets it (a
    null result counts as not met). ``action``: what a record that does not meet it gets:
    ``warn``: kept and counted; ``drop``: a dead letter with reason ``expectation:<name>``;
    ``fail``: the batch stops with an error naming the expectation and the first such records.
    Counted per micro-batch and per batch window, by both paths (the same code)."""

    name: str
    sql: str
    action: str

    def __post_init__(self) -> None:
        if self.action not in EXPECTATION_ACTIONS:
            raise ValueError(f"expectation {self.name!r}: action {self.action!r} is not one of {EXPECTATION_ACTIONS}")
        if not self.name or any(c in self.name for c in "|'\\\n") or len(self.name) > 60:
            raise ValueError(f"expectation name {self.name!r}: 1-60 characters, no '|', quote, backslash or newline")


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
    # Named data-quality expectations (warn / drop / fail), checked after the contract.
    expectations: tuple[Expectation, ...] = ()
    # What the kind's stateless real-time rule writes (its rules.py ``realtime_mutations``), or ""
    # when it has none: only such kinds run in the micro-batch DAG's real-time mode.
    realtime: str = ""
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
