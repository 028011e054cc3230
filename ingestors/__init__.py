"""Ingestors: a source client (pulls records from a source) plus a producer (writes them to Kafka).

Everything from the producer on is source-agnostic: sources only build contract events.
"""
