"""Seeding throughput of `ewf seed` against DynamoDB on moto.

Starts moto's server (scripts/moto_server.py), creates the stack's tables through
CloudFormation, generates N items, and times `ewf seed --data DIR` three ways: into an
empty table (every item written), again (every item kept), and with --reset (every item
overwritten). Prints items/s for each. It needs an ewf that reaches a stack. Usage:

    cargo build --release -p ewf --features aws
    .venv/bin/python scripts/bench_seed.py [--items N] [--ewf PATH]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
TABLES = {
    "CustomerTable": [("customerId", "HASH")],
    "InventoryTable": [("itemId", "HASH")],
    "PaymentTable": [("paymentId", "HASH")],
    "DeliveryTable": [("customerId", "HASH"), ("orderId", "RANGE")],
    "OrderTable": [("customerId", "HASH"), ("orderId", "RANGE")],
    "LedgerTable": [("stepKey", "HASH")],
    "EventStoreTable": [("who", "HASH"), ("timeWhat", "RANGE")],
}


def template() -> str:
    resources = {
        name: {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
                "KeySchema": [{"AttributeName": k, "KeyType": t} for k, t in keys],
            },
        }
        for name, keys in TABLES.items()
    }
    outputs = {name: {"Value": {"Ref": name}} for name in TABLES}
    return json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources, "Outputs": outputs})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--ewf", default=str(ROOT / "target/release/ewf"))
    args = parser.parse_args()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts/moto_server.py"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("moto_server did not start")
                time.sleep(0.1)
        env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1")
        env.pop("EWF_STACK", None)
        cloudformation = boto3.client("cloudformation", endpoint_url=endpoint, region_name="us-east-1",
                                      aws_access_key_id="testing", aws_secret_access_key="testing")
        cloudformation.create_stack(StackName="bench-seed", TemplateBody=template())
        with tempfile.TemporaryDirectory() as data:
            (Path(data) / "customers.json").write_text("[]")
            items = [
                {"itemId": f"item-{n}", "name": f"Item {n}", "price": "9.99", "available": 10, "reserved": 0}
                for n in range(args.items)
            ]
            (Path(data) / "items.json").write_text(json.dumps(items))
            for label, extra in [("empty table (all written)", []), ("again (all kept)", []),
                                 ("--reset (all overwritten)", ["--reset"])]:
                started = time.monotonic()
                done = subprocess.run(
                    [args.ewf, "--stack", "bench-seed", "--endpoint-url", endpoint, "seed", "--data", data,
                     "--output", "json", *extra],
                    env=env, cwd=data, capture_output=True, text=True,
                )
                elapsed = time.monotonic() - started
                if done.returncode != 0:
                    raise SystemExit(f"ewf seed failed ({done.returncode}): {done.stderr.strip()}")
                summary = json.loads(done.stdout)
                print(f"{label:28} {args.items} items in {elapsed:6.2f} s: {args.items / elapsed:8.0f} items/s "
                      f"(written {summary['itemsWritten']}, kept {summary['itemsKept']})")
    finally:
        server.terminate()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
