"""A WSGI service profiled by osprofiler's own WsgiMiddleware, sending its
points where an OpenStack service sends them.

Usage:
  wsgi_service.py --hmac-keys KEYS --notifications FILE
  wsgi_service.py --hmac-keys KEYS --connection-string URL
                  [--project P] [--service S] [--host H] [--prefix X]

With --notifications, every osprofiler notification (a dict with name,
base_id, parent_id, trace_id, timestamp, ...) is appended to FILE as one
JSON line. With --connection-string, osprofiler is initialised as a service
initialises it (`initializer.init_from_conf`, `[profiler] connection_string =
URL` and, with --prefix, `[profiler_otlp] service_name_prefix`), so its own
driver sends the points: `redis://` to its Redis store, `otlp://` through the
OpenTelemetry SDK (set OTEL_BSP_SCHEDULE_DELAY, in ms, to make the SDK's
batch processor send soon).

Serves on a free loopback port with wsgiref, prints the port on the first
line of stdout, and runs until killed. Each request does two nested points,
`python-work` and `python-db`.
"""

import argparse
import json
import socket
from wsgiref.simple_server import WSGIRequestHandler, make_server

from oslo_config import cfg

from osprofiler import initializer, notifier, opts, profiler, web


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hmac-keys", required=True)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--notifications")
    where.add_argument("--connection-string")
    parser.add_argument("--project", default="python-project")
    parser.add_argument("--service", default="python-b")
    parser.add_argument("--host", default=socket.gethostname())
    parser.add_argument("--prefix")
    args = parser.parse_args()

    if args.notifications:
        out = open(args.notifications, "a", encoding="utf-8")

        def write(info):
            out.write(json.dumps(info, default=str) + "\n")
            out.flush()

        notifier.set(write)
    else:
        # The global options, where osprofiler registers [profiler] and
        # [profiler_otlp], as a service's configuration file sets them.
        conf = cfg.CONF
        opts.set_defaults(conf, enabled=True, hmac_keys=args.hmac_keys,
                          connection_string=args.connection_string)
        conf([], project=args.project)
        if args.prefix:
            conf.set_override("service_name_prefix", args.prefix,
                              group="profiler_otlp")
        initializer.init_from_conf(conf, context={}, project=args.project,
                                   service=args.service, host=args.host)
    # osprofiler 4.4.0: the module-level switch wins over the middleware's
    # `enabled`, so set both the same way.
    web.enable(args.hmac_keys)

    def app(environ, start_response):
        with profiler.Trace("python-work", info={"path": environ.get("PATH_INFO")}):
            with profiler.Trace("python-db"):
                body = b"python ok"
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    wrapped = web.WsgiMiddleware(app, hmac_keys=args.hmac_keys, enabled=True)

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", 0, wrapped, handler_class=Quiet)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
