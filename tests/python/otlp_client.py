"""osprofiler as an HTTP client exporting with its OWN OTLP driver.

Usage: otlp_client.py HMAC_KEY CONNECTION_STRING PROJECT SERVICE HOST URL

Creates osprofiler's `otlp` notifier for CONNECTION_STRING, enables
osprofiler's `requests` instrumentation (every call made with `requests` is
an `http` point named REQUESTS_{method}_{host} by the OTLP driver, and
carries signed headers for that point), starts a profile with the key and
GETs URL. Flushes the OpenTelemetry SDK, then prints one JSON object: the
base_id, the status and the body.
"""

import json
import sys

import requests as http
from opentelemetry import trace

from osprofiler import notifier, opts, profiler
from osprofiler import requests as osprofiler_requests
from oslo_config import cfg


def main():
    key, connection_string, project, service, host, url = sys.argv[1:7]
    cfg.CONF([], project=project)
    notifier.set(notifier.create(connection_string, project=project,
                                 service=service, host=host, conf=cfg.CONF))
    osprofiler_requests.enable()
    prof = profiler.init(key)
    response = http.get(url, timeout=30)
    # Deliver every span before exiting.
    trace.get_tracer_provider().shutdown()
    print(json.dumps({
        "base_id": prof.get_base_id(),
        "status": response.status_code,
        "body": response.text,
    }))


if __name__ == "__main__":
    main()
