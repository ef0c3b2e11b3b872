"""A tiny WSGI service profiled by osprofiler's own WsgiMiddleware.

Usage: wsgi_service.py HMAC_KEYS NOTIFICATIONS_FILE

Serves on a free loopback port with wsgiref, prints the port on the first
line of stdout, and appends every osprofiler notification (a dict with name,
base_id, parent_id, trace_id, timestamp, ...) to NOTIFICATIONS_FILE as one
JSON line. Runs until killed.
"""

import json
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

from osprofiler import notifier, profiler, web


def main():
    hmac_keys, out_path = sys.argv[1], sys.argv[2]
    out = open(out_path, "a", encoding="utf-8")

    def write(info):
        out.write(json.dumps(info, default=str) + "\n")
        out.flush()

    notifier.set(write)
    # osprofiler 4.4.0: the module-level switch wins over the constructor's
    # `enabled`, so set both the same way.
    web.enable(hmac_keys)

    def app(environ, start_response):
        with profiler.Trace("python-work", info={"path": environ.get("PATH_INFO")}):
            with profiler.Trace("python-db"):
                body = b"python ok"
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    wrapped = web.WsgiMiddleware(app, hmac_keys=hmac_keys, enabled=True)

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", 0, wrapped, handler_class=Quiet)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
