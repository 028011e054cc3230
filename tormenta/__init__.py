"""Tormenta: micro-batch as real time, next to the batch archetype, managed by Airflow.

A regular package (not a namespace one): the executors of a cluster import it from the
``--py-files`` zip, and zipimport finds regular packages only.
"""
