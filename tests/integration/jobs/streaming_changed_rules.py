"""The streaming job after a change of its business rules (the sentiment formula), as an edit
of ``kinds/social/rules.py`` would make it: the checkpoint guard must notice."""

import sys

from kinds.social.contract import KIND as SOCIAL
from spark_jobs import rules, streaming

steps = [dict(step) for step in rules.FEATURES[SOCIAL.name]]
steps[-1]["sentiment"] = "cast(_pos - 2 * _neg AS double) / cast(greatest(1, _pos + _neg) AS double)"
rules.FEATURES[SOCIAL.name] = steps

if __name__ == "__main__":
    sys.exit(streaming.main())
