"""The streaming job after a change of its business rules (the sentiment formula), as an edit
of ``spark_jobs/transforms/social.py`` would make it: the checkpoint guard must notice."""

import sys

from spark_jobs import kinds, streaming
from tormenta.contracts import SOCIAL

steps = [dict(step) for step in kinds.FEATURES[SOCIAL.name]]
steps[-1]["sentiment"] = "cast(_pos - 2 * _neg AS double) / cast(greatest(1, _pos + _neg) AS double)"
kinds.FEATURES[SOCIAL.name] = steps

if __name__ == "__main__":
    sys.exit(streaming.main())
