"""moto server with each request handled on its own, one after another.

moto's backends are not thread-safe: under the stock threaded `moto_server`, two concurrent
DynamoDB conditional writes can both pass their condition (seen here: two winners out of ten
concurrent claims, about one run in seven). Real DynamoDB never allows that, so the concurrency
tests would flake on the emulator's race rather than test ours. The server stays threaded (so
keep-alive connections do not block each other); a lock serialises the application.

It installs the stand-ins of moto_stand_ins.py (RDS global switchover and failover, settable
Route 53 health-check observations) and answers their control requests, and it closes one gap of
moto 5.2.5 in the responses it gives (a stand-in for what the real service sends): CodePipeline timestamps (a pipeline's `metadata.created`, an execution's
`startTime`) come back as ISO-8601 strings, where the service's JSON protocol sends epoch
seconds, and the AWS SDK for Rust rejects the strings ("only Infinity, -Infinity, NaN can represent
a float as a string"). They are rewritten as numbers.

Usage: python moto_server.py HOST PORT
"""

import json
import os
import sys
import threading
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moto_stand_ins  # noqa: E402  (next to this file)

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


# CodePipeline members of type timestamp that moto answers as ISO-8601 strings.
CODEPIPELINE_TIMESTAMPS = {"created", "updated", "startTime", "lastUpdateTime", "lastStatusChange", "lastChanged"}


def epoch_timestamps(value):
    """`value` with every ISO-8601 string under a timestamp key made epoch seconds."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in CODEPIPELINE_TIMESTAMPS and isinstance(v, str):
                try:
                    v = datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
                except ValueError:
                    pass
            out[k] = epoch_timestamps(v)
        return out
    if isinstance(value, list):
        return [epoch_timestamps(v) for v in value]
    return value


def codepipeline_timestamps(app):
    """Wraps the WSGI app: CodePipeline responses get epoch-second timestamps."""

    def wrapped(environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("CodePipeline_"):
            return app(environ, start_response)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        body = b"".join(app(environ, capture))
        try:
            body = json.dumps(epoch_timestamps(json.loads(body))).encode()
        except ValueError:
            pass
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(captured["status"], headers)
        return [body]

    return wrapped


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    moto_stand_ins.install()
    moto_app = DomainDispatcherApplication(create_backend_app)
    moto_app.debug = True
    app = codepipeline_timestamps(moto_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        answer = moto_stand_ins.control(environ)
        if answer is not None:
            status, body = answer
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        with lock:
            # The whole response is produced under the lock.
            return list(app(environ, start_response))

    run_simple(host, port, one_at_a_time, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
