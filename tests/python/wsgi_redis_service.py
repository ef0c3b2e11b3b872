"""A tiny WSGI service profiled by osprofiler's own WsgiMiddleware, its
points stored by osprofiler's own Redis driver.

Usage: wsgi_redis_service.py HMAC_KEYS CONNECTION_STRING

Serves on a free loopback port with wsgiref and prints the port on the first
line of stdout. Every osprofiler notification goes through
`notifier.create(CONNECTION_STRING, project="python-project",
service="python-b")`, that is to the `redis` driver for a `redis://` string:
the layout the Rust Redis sink must match (`info.host` is osprofiler's own,
`socket.gethostname()`). Runs until killed.
"""

import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

from oslo_config import cfg
from osprofiler import notifier, opts, profiler, web


def main():
    hmac_keys, connection_string = sys.argv[1], sys.argv[2]
    # The drivers read the [profiler] options, as in an OpenStack service.
    opts.set_defaults(cfg.CONF)
    notifier.set(
        notifier.create(
            connection_string,
            project="python-project",
            service="python-b",
        )
    )
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
