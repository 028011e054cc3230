"""What the Spark jobs make of their shared options (``tormenta.jobs.HBaseArgs``)."""

from __future__ import annotations

import argparse


def hbase_endpoint(args: argparse.Namespace):
    from tormenta.hbase import HBaseEndpoint

    endpoint = HBaseEndpoint(args.hbase_host, args.hbase_port, zookeeper_quorum=args.hbase_zookeeper)
    endpoint.native_settings()  # refuses a malformed quorum before Spark starts
    return endpoint
