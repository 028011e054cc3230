"""Command-line options the Spark jobs share."""

from __future__ import annotations

import argparse


def add_hbase_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hbase-host", default="127.0.0.1", help="Thrift gateway (control plane, metrics)")
    p.add_argument("--hbase-port", type=int, default=9090)
    p.add_argument("--hbase-zookeeper", default="127.0.0.1:2181",
                   help="ZooKeeper quorum host:port[,host:port] of the native writer (the data path)")  # fmt: skip


def hbase_endpoint(args: argparse.Namespace):
    from tormenta.hbase import HBaseEndpoint

    endpoint = HBaseEndpoint(args.hbase_host, args.hbase_port, zookeeper_quorum=args.hbase_zookeeper)
    endpoint.native_settings()  # refuses a malformed quorum before Spark starts
    return endpoint
