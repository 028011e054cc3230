"""Spark jobs (each a small CLI) and what they share: one batch's pipeline, the contract as SQL,
the JVM sink. Each kind's rules come from its folder in ``kinds/``."""
