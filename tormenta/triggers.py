"""What a trigger may carry: only the DAG's own Params.

Airflow merges ``dag_run.conf`` into the Params and validates each Param's schema, but it takes
keys no Param declares without a word, so a misspelled ``intervall`` would silently run with the
default interval. The first task of each pipeline DAG calls ``check_conf`` and fails the run at
once, with the reason at the top of its log and no retry.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any


class TriggerError(ValueError):
    """A trigger the DAG must refuse: deterministic, so never worth a retry."""


def unknown_keys(conf: Mapping[str, Any] | None, params: Iterable[str]) -> list[str]:
    return sorted(set(conf or {}) - set(params))


def check_conf(conf: Mapping[str, Any] | None, params: Iterable[str]) -> None:
    """Raise ``TriggerError`` naming every conf key that is not a Param (with a likely meant one)."""
    names = sorted(params)
    unknown = unknown_keys(conf, names)
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise TriggerError(f"unknown conf key(s) {', '.join(hints)}: this DAG takes only {', '.join(names)}. "
                       "The run stops here rather than run with defaults you did not ask for.")  # fmt: skip


def fail_on_bad_trigger(conf: Mapping[str, Any] | None, params: Iterable[str]) -> None:
    """``check_conf`` for a task body: a refused trigger fails the task without retries."""
    try:
        check_conf(conf, params)
    except TriggerError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from None
