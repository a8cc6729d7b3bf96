"""moto server with each request handled on its own, one after another.

moto's backends are not thread-safe: under the stock threaded `moto_server`, two concurrent
DynamoDB conditional writes can both pass their condition (seen here: two winners out of ten
concurrent claims, about one run in seven). Real DynamoDB never allows that, so the concurrency
tests would flake on the emulator's race rather than test ours. The server stays threaded (so
keep-alive connections do not block each other); a lock serialises the application.

Usage: python moto_server.py HOST PORT
"""

import os
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            # The whole response is produced under the lock.
            return list(app(environ, start_response))

    run_simple(host, port, one_at_a_time, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
