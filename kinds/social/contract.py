"""The social comment contract: one comment on a politician's page."""

from tormenta.eventkind import EventKind, Expectation

KIND = EventKind(
    name="social.comment",
    version=1,
    topic="tormenta.social.comments",
    key_field="page_id",
    fields={
        "page_id": "string",  # the politician's page
        "post_id": "string",
        "author": "string",
        "text": "string",
        "lang": "string",
    },
    max_bytes=16 * 1024,
    events_table="social_comments",
    ids=("post_id",),
    expectations=(
        Expectation("text not empty", "trim(text) != ''", "drop"),
        Expectation("lang is es or en", "lang IN ('es', 'en')", "warn"),
    ),
    tables={
        # per politician and minute, row "<page_id>|<yyyyMMddHHmm>"; m:<batch> = JSON counts
        "social_minute": {"m": {"max_versions": 1}},
        # per politician and author, row "<page_id>|<author>"; m:<batch> = comment count
        "social_authors": {"m": {"max_versions": 1}},
    },
)
