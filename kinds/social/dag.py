"""What the micro-batch DAG offers for social comments (its trigger form's fields) and the ingestors
it runs for them: per hot page, several ingestors that share the page; the other pages split over
a few more."""

from __future__ import annotations

from typing import Any

from tormenta.contracts import topic_for
from tormenta.reference import POLITICIANS

from .contract import KIND

SOURCE_TITLE = "politicians' page comments"
AVG_EVENT_BYTES = 420  # measured JSON size of a comment


def params() -> dict[str, Any]:
    from airflow.sdk import Param

    pages = sorted(POLITICIANS)
    return {
        "pages": Param(pages, type="array", minItems=1, uniqueItems=True, items={"type": "string", "enum": pages},
                       examples=pages,
                       title="Politicians' pages", description="Pages the social ingestors scrape."),
        "hot_pages": Param(["pol-03"], type="array", uniqueItems=True, items={"type": "string", "enum": pages},
                           examples=pages,
                           title="Hot pages", description="Pages with their own ingestors (a polemic "
                                                          "politician's page gets two)."),
        "ingestors_per_hot_page": Param(2, type="integer", minimum=1, maximum=4,
                                        title="Ingestors per hot page",
                                        description="Each takes a disjoint share of the page's comments."),
        "ingestors_other_pages": Param(1, type="integer", minimum=1, maximum=8,
                                       title="Ingestors for the other pages",
                                       description="The remaining pages are split over this many ingestors."),
        "rate_per_page": Param(20, type="number", minimum=0.1, maximum=50_000,
                               title="Comments per second per page", description="Before a storm."),
        "storm": Param(False, type="boolean", title="Storm",
                       description="A scandal: the storm page gets storm_factor times more comments."),
        "storm_page": Param("pol-03", type="string", enum=pages, title="Storm page", description="Page of the storm."),
        "storm_factor": Param(20, type="integer", minimum=2, maximum=1000, title="Storm factor",
                              description="Multiplier of the storm page's rate."),
        "max_events_per_ingestor": Param(0, type="integer", minimum=0, maximum=100_000_000,
                                         title="Events per social ingestor",
                                         description="0: unlimited. A finite feed ends its ingestor (tests, demos)."),
    }  # fmt: skip


def _split(items: list[str], n: int) -> list[list[str]]:
    n = max(1, min(n, len(items)))
    return [items[i::n] for i in range(n)]


def ingestors(p: dict[str, Any], namespace: str) -> tuple[list[dict[str, Any]], float]:
    """The social ingestors of the Params ``p`` (argument lists of ``ingestors.runner``) and the
    events per second they send together."""
    pages = sorted(p["pages"])
    hot = [x for x in sorted(p["hot_pages"]) if x in pages]
    cold = [x for x in pages if x not in hot]
    topic = topic_for(KIND, namespace)

    def social(name: str, group: list[str], shard: int, shards: int) -> dict[str, Any]:
        argv = ["social", "--pages", ",".join(group), "--shard", str(shard), "--shards", str(shards),
                "--rate", f"{float(p['rate_per_page']) / shards:g}", "--topic", topic]  # fmt: skip
        if p["storm"] and p["storm_page"] in group:
            argv += ["--storm-page", p["storm_page"], "--storm-factor", str(int(p["storm_factor"]))]
        if int(p["max_events_per_ingestor"]) > 0:
            argv += ["--max-events", str(int(p["max_events_per_ingestor"]))]
        return {"name": name, "module": "ingestors.runner", "argv": argv, "pulls": True}

    specs = []
    n_hot = int(p["ingestors_per_hot_page"])
    for page in hot:
        for shard in range(n_hot):
            specs.append(social(f"social-{page}-{shard + 1}of{n_hot}", [page], shard, n_hot))
    for i, group in enumerate(_split(cold, int(p["ingestors_other_pages"])) if cold else []):
        specs.append(social(f"social-pages-{i + 1}", group, 0, 1))
    storm = int(p["storm_factor"]) if p["storm"] and p["storm_page"] in pages else 1
    return specs, float(p["rate_per_page"]) * (len(pages) - (1 if storm > 1 else 0) + storm)
