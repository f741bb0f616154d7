#!/usr/bin/env python3
"""Cold start of the seven functions: each release `bootstrap` is started natively behind a
Runtime API on 127.0.0.1, as Lambda starts it, and timed from the spawn to its first poll
(GET .../invocation/next) and to its reply to one real invocation. The AWS endpoint is a
stub on 127.0.0.1 answering every call with an empty JSON object (an item not found, a
write accepted), so the reply includes the first SDK request but no network or TLS
handshake. Peak resident memory is read at the first poll (VmHWM) and after the reply.

Build the functions first (release profile, as deployed):

    cargo build --release -p ewf-add-function -p ewf-customer-function ...  (see --help)

then `scripts/bench-cold-start.py [--runs N] [--bin-dir DIR]`; it prints the medians.
"""
import argparse
import json
import os
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import time

FUNCTIONS = ["add", "customer", "order", "inventory", "payment", "delivery", "event-store"]
ORDER_ID = "01JDXKQ3Z8J1V6N3R0W2T5Y7AB"


def http_api(path):
    """An API Gateway HTTP API request (payload format 2.0) for GET `path`."""
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {}, "isBase64Encoded": False,
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench.local",
            "domainPrefix": "bench", "requestId": "bench", "routeKey": "$default",
            "stage": "$default", "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0,
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "bench"},
        },
    }


# One real invocation per function; every one but add reaches the (stub) AWS endpoint.
INVOCATIONS = {
    "add": {"numbers": ["399.99", "12.34"]},
    "customer": http_api("/customer/describe/customer-1"),
    "order": http_api(f"/order/describe/customer-1/{ORDER_ID}"),
    "inventory": http_api("/inventory/describe/item-1"),
    "payment": http_api("/payment/describe/bench-payment"),
    "delivery": http_api(f"/delivery/describe/customer-1/{ORDER_ID}"),
    "event-store": {
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "OrderCreated",
        "source": "Order", "account": "123456789012", "time": "2026-01-01T00:00:00Z",
        "region": "eu-west-1", "resources": [],
        "detail": {"customerId": "customer-1", "orderId": ORDER_ID, "itemId": "item-1"},
    },
}

# What the template gives the functions (every one gets all; each reads its own).
ENVIRONMENT = {
    "CUSTOMER_TABLE": "Customer", "ORDER_TABLE": "Order", "INVENTORY_TABLE": "Inventory",
    "PAYMENT_TABLE": "Payment", "DELIVERY_TABLE": "Delivery", "EVENT_STORE_TABLE": "EventStore",
    "LEDGER_TABLE": "Ledger", "EVENT_BUS_NAME": "bench-bus", "ORDER_DEADLINE_SECONDS": "900",
    "PAYMENT_FAIL_PROBABILITY": "0.2", "RUST_LOG": "info",
    "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench", "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
}


class Connection:
    """One HTTP/1.1 connection: requests in, whole requests out (Content-Length or chunked)."""

    def __init__(self, sock, role):
        self.sock, self.role, self.buffer = sock, role, b""

    def requests(self):
        while True:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (line.partition(":") for line in lines[1:])}
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body, taken = dechunk(rest)
                if body is None:
                    return
            else:
                length = int(headers.get("content-length") or 0)
                if len(rest) < length:
                    return
                body, taken = rest[:length], length
            self.buffer = rest[taken:]
            method, path, _ = lines[0].split(" ", 2)
            yield method, path, headers, body

    def reply(self, status, body, headers=()):
        head = [f"HTTP/1.1 {status} OK", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in headers]
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)


def dechunk(data):
    """The body of a chunked message and the bytes it took, or (None, 0) while incomplete."""
    body, at = b"", 0
    while True:
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            return None, 0
        size = int(data[at:line_end].split(b";")[0], 16)
        at = line_end + 2
        if size == 0:
            end = data.find(b"\r\n", at)
            return (body, end + 2) if end >= 0 else (None, 0)
        if len(data) < at + size + 2:
            return None, 0
        body += data[at:at + size]
        at += size + 2


def peak_kib(pid):
    """VmHWM of a running process, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")


def cpu_ms(pid):
    """CPU time a running process has used so far, all its threads, in milliseconds (less
    sensitive than the wall time to other work on the machine)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as f:
            total += int(f.read().split()[0])
    return total / 1e6


def listener():
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    return sock


def run_once(binary, name, timeout):
    """Starts `binary`, serves one invocation, returns the figures of this cold start."""
    runtime, aws = listener(), listener()
    selector = selectors.DefaultSelector()
    selector.register(runtime, selectors.EVENT_READ, "runtime")
    selector.register(aws, selectors.EVENT_READ, "aws")
    env = {"PATH": os.environ.get("PATH", ""), **ENVIRONMENT,
           "AWS_LAMBDA_FUNCTION_NAME": name,
           "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime.getsockname()[1]}",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{aws.getsockname()[1]}"}
    payload = json.dumps(INVOCATIONS[name]).encode()
    figures, reply = {}, None
    start = time.perf_counter_ns()
    child = subprocess.Popen([binary], env=env, cwd=os.path.dirname(binary),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while reply is None:
            if time.monotonic() > deadline or child.poll() is not None:
                err = child.stderr.read().decode(errors="replace") if child.poll() is not None else ""
                raise RuntimeError(f"{name}: no reply within {timeout} s {err.strip()}")
            for key, _ in selector.select(timeout=0.05):
                if key.data in ("runtime", "aws"):
                    sock, _ = key.fileobj.accept()
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    selector.register(sock, selectors.EVENT_READ, Connection(sock, key.data))
                    continue
                conn = key.data
                data = conn.sock.recv(65536)
                if not data:
                    selector.unregister(conn.sock)
                    conn.sock.close()
                    continue
                conn.buffer += data
                for method, path, _, body in conn.requests():
                    now = time.perf_counter_ns()
                    if conn.role == "aws":
                        conn.reply(200, b"{}", [("Content-Type", "application/x-amz-json-1.0")])
                    elif path.endswith("/invocation/next"):
                        figures["poll_ms"] = (now - start) / 1e6
                        figures["poll_kib"] = peak_kib(child.pid)
                        figures["poll_cpu_ms"] = cpu_ms(child.pid)
                        conn.reply(200, payload, [
                            ("Lambda-Runtime-Aws-Request-Id", "bench-request"),
                            ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 10000)),
                            ("Lambda-Runtime-Invoked-Function-Arn",
                             f"arn:aws:lambda:eu-west-1:123456789012:function:{name}"),
                            ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                            ("Content-Type", "application/json")])
                    elif method == "POST" and "/invocation/" in path:
                        figures["reply_ms"] = (now - start) / 1e6
                        figures["reply_kib"] = peak_kib(child.pid)
                        reply = (path.rsplit("/", 1)[1], body)
                        conn.reply(202, b"{}")
                    elif path.endswith("/init/error"):
                        raise RuntimeError(f"{name}: init error {body.decode(errors='replace')}")
                    else:
                        conn.reply(404, b"{}")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        for key in list(selector.get_map().values()):
            key.fileobj.close()
        selector.close()
    figures["outcome"] = reply[0]
    figures["body"] = reply[1].decode(errors="replace")
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="cold starts per function (median)")
    parser.add_argument("--bin-dir", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release"),
        help="where the release binaries are (default $CARGO_TARGET_DIR/release)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per cold start")
    parser.add_argument("--json", action="store_true", help="print every run as JSON")
    parser.add_argument("functions", nargs="*", default=FUNCTIONS, help="functions to measure")
    args = parser.parse_args()
    missing = [f for f in args.functions if not os.access(os.path.join(args.bin_dir, f), os.X_OK)]
    if missing:
        packages = " ".join(f"-p ewf-{f}-function" for f in missing)
        sys.exit(f"error: no binary {', '.join(missing)} in {args.bin_dir}: "
                 f"run cargo build --release {packages}")
    runs = {}
    try:
        for name in args.functions:
            binary = os.path.abspath(os.path.join(args.bin_dir, name))
            runs[name] = [run_once(binary, name, args.timeout) for _ in range(args.runs)]
    except RuntimeError as err:
        sys.exit(f"error: {err}")
    if args.json:
        print(json.dumps(runs, indent=2))
        return
    print(f"cold start, median of {args.runs} runs ({args.bin_dir})")
    print(f"{'function':<12} {'first poll':>11} {'cpu to poll':>12} {'peak at poll':>13} "
          f"{'first reply':>12} {'peak at reply':>14}  reply")
    for name, figures in runs.items():
        def med(key):
            return statistics.median(run[key] for run in figures)
        first = figures[0]
        status = json.loads(first["body"]).get("statusCode", "") if first["body"].startswith("{") else ""
        outcome = f"{first['outcome']} {status}".strip()
        print(f"{name:<12} {med('poll_ms'):>8.2f} ms {med('poll_cpu_ms'):>9.2f} ms "
              f"{med('poll_kib') / 1024:>9.1f} MiB "
              f"{med('reply_ms'):>9.2f} ms {med('reply_kib') / 1024:>10.1f} MiB  {outcome}")


if __name__ == "__main__":
    main()
