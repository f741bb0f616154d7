"""moto's server, answering one request at a time.

DynamoDB applies each write (and each transaction) atomically. moto's own server is
threaded and checks write conditions without a lock, so two concurrent conditional
writes can both pass there; serving one request at a time restores the atomicity the
adapter tests rely on. Usage: moto_server.py -H 127.0.0.1 -p PORT
"""

import argparse
import os

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    run_simple(
        args.host,
        args.port,
        DomainDispatcherApplication(create_backend_app),
        threaded=False,
    )


if __name__ == "__main__":
    main()
