"""The event kinds: one folder each, everything a kind needs and nothing else.

``kinds/<folder>/``, the folder's name is the kind's id (the micro-batch DAG's Sources, the
ingestor runner's command):

* ``contract.py``: ``KIND``, a ``tormenta.eventkind.EventKind``: the event's fields and checks, its
  topic, its events table and its own tables. Imports only ``tormenta.eventkind``.
* ``rules.py``: ``FEATURES_SQL`` (per-event feature columns, as steps of Spark SQL) and
  ``mutations(events, ctx, refs)``, the business rules that turn a batch's good events into HBase
  mutations; the micro-batch and the batch window both run them. Imports ``tormenta`` and ``spark_jobs``.
* ``source.py``: the source client and its ingestor command (``COMMAND``, ``add_arguments``,
  ``open_source``). Imports ``tormenta`` and ``ingestors``.
* ``dag.py``: what the micro-batch DAG offers for it (``SOURCE_TITLE``, ``params()``) and the
  ingestors it runs (``ingestors(p, namespace)``). Imports ``tormenta`` (and ``airflow.sdk`` in
  ``params``).

``tormenta.contracts.discover`` finds the folders (the core imports no kind); topics and tables
are made for every kind found, the jobs run every kind's rules, the runner offers every kind's
command and the DAG every kind's source. ``tests/unit/test_kinds.py`` adds a third kind in a
folder of its own and finds it in all of them.

A regular package that other paths may extend (``pkgutil.extend_path``): a deployment can keep its
kinds in a ``kinds/`` folder of its own on ``PYTHONPATH``.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
