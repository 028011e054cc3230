"""Spark jobs (each a small CLI) and the pure transforms they share."""
