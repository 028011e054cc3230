"""The registry of event kinds on the processing side: each contract (``tormenta.contracts.KINDS``)
with its per-event features and the rules that turn its good events into HBase mutations. The micro-batch and the batch
window loop over it; a contract without rules, or rules without a contract, fail at import."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame

from spark_jobs.context import BatchContext
from spark_jobs.transforms import geo, social
from tormenta.contracts import GEO, KINDS, SOCIAL

# kind name -> (good events of that kind, the batch, the reference cache) -> mutation DataFrames
Rules = Callable[[DataFrame, BatchContext, object], list[DataFrame]]

RULES: dict[str, Rules] = {
    SOCIAL.name: lambda events, ctx, refs: social.mutations(events, ctx),
    GEO.name: lambda events, ctx, refs: geo.mutations(events, ctx, refs.zones),
}

# kind name -> per-event feature columns (steps of SQL over the event's typed fields, as
# ``social.FEATURES_SQL``). The pipeline computes them once per batch, beside the classification,
# for the rules to read (computed in a rule, a feature would be computed once per rule output).
FEATURES: dict[str, list[dict[str, str]]] = {SOCIAL.name: social.FEATURES_SQL, GEO.name: []}

if set(RULES) != set(KINDS) or set(FEATURES) != set(KINDS):
    raise ImportError(f"event kinds without rules or rules without a contract: {set(RULES) ^ set(KINDS)}")
