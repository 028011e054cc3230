"""The event kinds on the processing side: each kind's per-event features and the rules that turn its
good events into HBase mutations, from its folder's ``rules.py`` (``kinds/__init__.py``). The
micro-batch and the batch window loop over them; a kind without rules fails at import."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame

from spark_jobs.context import BatchContext
from tormenta.contracts import KINDS, kind_part

# kind name -> (good events of that kind, the batch, the reference cache) -> mutation DataFrames
Rules = Callable[[DataFrame, BatchContext, object], list[DataFrame]]


def _rules() -> tuple[dict[str, Rules], dict[str, list[dict[str, str]]], dict[str, Rules]]:
    rules, features, realtime = {}, {}, {}
    for name, kind in KINDS.items():
        module = kind_part(kind, "rules")
        if module is None or not callable(getattr(module, "mutations", None)):
            raise ImportError(f"event kind {name} has no rules: {kind.package}.rules must define mutations()")
        rules[name] = module.mutations
        features[name] = list(getattr(module, "FEATURES_SQL", []))
        if kind.realtime:
            if not callable(getattr(module, "realtime_mutations", None)):
                raise ImportError(f"event kind {name} declares a real-time rule ({kind.realtime!r}): "
                                  f"{kind.package}.rules must define realtime_mutations()")  # fmt: skip
            realtime[name] = module.realtime_mutations
    return rules, features, realtime


# RULES: kind name -> its rules. FEATURES: kind name -> its per-event feature columns (steps of SQL
# over the event's typed fields, as ``kinds.social.rules.FEATURES_SQL``). The pipeline computes the
# features once per batch, beside the classification, for the rules to read (computed in a rule,
# a feature would be computed once per rule output).
# REALTIME: kind name -> its stateless rule: (the batch, the reference cache) -> mutations (SQL) of
# one good event, evaluated in the one projection real-time mode allows, for the kinds that declare one (``EventKind.realtime``).
RULES, FEATURES, REALTIME = _rules()
