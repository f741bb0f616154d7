#!/usr/bin/env python3
"""Stands in for the container CLI of the emulator (FAKECLOUD_CONTAINER_CLI) during
scripts/rehearse.sh: instead of a provided.al2023 container, each "container" is the
function's own `bootstrap`, run natively behind a Runtime API on 127.0.0.1.

Answers the calls the emulator makes: info, pull, image inspect, create, cp, start,
port, logs, rm. State
lives in $EWF_REHEARSE_DIR/containers/<id>/. `serve <id>` is the process `start`
launches: it takes invocations (POST /2015-03-31/functions/function/invocations) and
hands them to the bootstrap through the Runtime API (/2018-06-01/runtime/...).
"""
import http.server
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

STATE = os.path.join(os.environ.get("EWF_REHEARSE_DIR", ".ewf-rehearse"), "containers")


def box(cid):
    return os.path.join(STATE, cid)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_endpoint(value):
    """The emulator's address as seen from a container, made reachable natively."""
    url = urllib.parse.urlsplit(value)
    if url.scheme and url.port:
        return f"{url.scheme}://127.0.0.1:{url.port}{url.path}"
    return value


def create(args):
    env, image = {}, None
    it = iter(args)
    for arg in it:
        if arg == "-e":
            pair = next(it)
            key, _, value = pair.partition("=")
            env[key] = value if "=" in pair else os.environ.get(key, "")
        elif arg in ("-p", "--label", "--add-host", "--tmpfs", "--network"):
            next(it)
        elif image is None:
            image = arg
    for key in list(env):
        if key.startswith("AWS_ENDPOINT_URL"):
            env[key] = local_endpoint(env[key])
    location = os.environ.get("EWF_REHEARSE_LOCATION_URL")
    if location:
        env["AWS_ENDPOINT_URL_GEO_PLACES"] = location
        env["AWS_ENDPOINT_URL_GEO_ROUTES"] = location
    cid = uuid.uuid4().hex[:12]
    os.makedirs(os.path.join(box(cid), "task"))
    with open(os.path.join(box(cid), "env.json"), "w") as f:
        json.dump(env, f)
    print(cid)


def copy(source, dest):
    cid, _, path = dest.partition(":")
    if path != "/var/task":  # /var/runtime holds the same bootstrap; no layers here
        return
    shutil.copytree(source.rstrip("."), os.path.join(box(cid), "task"), dirs_exist_ok=True)


def start(cid):
    port = free_port()
    with open(os.path.join(box(cid), "port"), "w") as f:
        f.write(str(port))
    log = open(os.path.join(box(cid), "log"), "ab")
    child = subprocess.Popen([sys.executable, __file__, "serve", cid], stdout=log,
                             stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    with open(os.path.join(box(cid), "pid"), "w") as f:
        f.write(str(child.pid))
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                print(cid)
                return
        time.sleep(0.05)
    sys.exit(f"container {cid} did not start")


def remove(cid):
    try:
        with open(os.path.join(box(cid), "pid")) as f:
            os.killpg(int(f.read()), signal.SIGTERM)
    except (OSError, ValueError):
        pass
    shutil.rmtree(box(cid), ignore_errors=True)


def serve(cid):
    """One invocation at a time, as one Lambda instance runs them."""
    invocations, results = queue.Queue(), queue.Queue()
    with open(os.path.join(box(cid), "env.json")) as f:
        env = json.load(f)
    with open(os.path.join(box(cid), "port")) as f:
        port = int(f.read())
    runtime_port = free_port()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, status, body, headers=()):
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def body(self):
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self):
            if self.path.endswith("/runtime/invocation/next"):
                request_id, payload = invocations.get()
                deadline = int(time.time() * 1000) + int(env.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "10")) * 1000
                name = env.get("AWS_LAMBDA_FUNCTION_NAME", "function")
                arn = f"arn:aws:lambda:{env.get('AWS_REGION', 'us-east-1')}:000000000000:function:{name}"
                self.reply(200, payload, [("Lambda-Runtime-Aws-Request-Id", request_id),
                                          ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                                          ("Lambda-Runtime-Invoked-Function-Arn", arn),
                                          ("Lambda-Runtime-Trace-Id", "Root=1-0-0")])
            else:
                self.reply(404, b"{}")

        def do_POST(self):
            body = self.body()
            if self.path == "/2015-03-31/functions/function/invocations":
                invocations.put((str(uuid.uuid4()), body))
                self.reply(200, results.get(), [("Content-Type", "application/json")])
            elif self.path.endswith("/response") or self.path.endswith("/error"):
                results.put(body)  # an error body carries errorType, which marks it failed
                self.reply(202, b"{}")
            else:
                self.reply(404, b"{}")

        def log_message(self, *args):
            pass

    for listen in (port, runtime_port):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", listen), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    task = os.path.join(box(cid), "task")
    child_env = {"PATH": os.environ.get("PATH", ""), **env,
                 "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime_port}", "LAMBDA_TASK_ROOT": task}
    bootstrap = subprocess.Popen([os.path.join(task, "bootstrap")], cwd=task, env=child_env)
    signal.signal(signal.SIGTERM, lambda *_: (bootstrap.terminate(), sys.exit(0)))
    bootstrap.wait()


def main(argv):
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    # No image to fetch or look at: the bootstrap runs natively. The emulator pulls a
    # function's base image ahead of its first invocation (pull, image inspect).
    if command in ("info", "pull", "image"):
        return
    if command == "create":
        return create(args)
    if command == "cp":
        return copy(args[0], args[1])
    if command == "start":
        return start(args[-1])
    if command == "port":
        with open(os.path.join(box(args[0]), "port")) as f:
            print(f"127.0.0.1:{f.read()}")
        return
    if command == "logs":
        path = os.path.join(box(args[-1]), "log")
        if os.path.exists(path):
            with open(path, "rb") as f:
                sys.stdout.write(b"".join(f.readlines()[-200:]).decode(errors="replace"))
        return
    if command == "rm":
        return remove(args[-1])
    if command == "serve":
        return serve(args[0])
    sys.exit(f"rehearse-container: {command or 'no command'} is not supported")


if __name__ == "__main__":
    main(sys.argv[1:])
