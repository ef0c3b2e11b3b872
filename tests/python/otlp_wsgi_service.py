"""A WSGI service profiled by osprofiler, exporting with osprofiler's OWN
OTLP driver (osprofiler/drivers/otlp.py, OpenTelemetry SDK + OTLP/HTTP).

Usage: otlp_wsgi_service.py HMAC_KEYS CONNECTION_STRING PROJECT SERVICE HOST [PREFIX]

Initialises osprofiler as a service does (`init_from_conf` with
`[profiler] connection_string = otlp://...` and, when given,
`[profiler_otlp] service_name_prefix = PREFIX`), serves on a free loopback port
with wsgiref under osprofiler's `WsgiMiddleware`, prints the port on the
first line of stdout and runs until killed. Each request does two nested
points (`python-work`, `python-db`). Set OTEL_BSP_SCHEDULE_DELAY (ms) to make
the SDK's batch processor send spans soon after they end.
"""

import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

from oslo_config import cfg

from osprofiler import initializer, opts, profiler, web


def main():
    hmac_keys, connection_string, project, service, host = sys.argv[1:6]
    prefix = sys.argv[6] if len(sys.argv) > 6 else None
    # The global options, where osprofiler registers [profiler] and
    # [profiler_otlp], as a service's configuration file would set them.
    conf = cfg.CONF
    opts.set_defaults(conf, enabled=True, hmac_keys=hmac_keys,
                      connection_string=connection_string)
    conf([], project=project)
    if prefix:
        conf.set_override("service_name_prefix", prefix, group="profiler_otlp")
    initializer.init_from_conf(conf, context={}, project=project,
                               service=service, host=host)

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
