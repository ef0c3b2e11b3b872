"""osprofiler as an HTTP client: profiles one call to a service.

Usage: http_client.py HMAC_KEY URL

Initialises the profiler with the key, opens a point named `python-client`,
takes the signed headers from `web.get_trace_id_headers()` and sends a GET
with Python's own HTTP client. Prints one JSON object: the base_id, the
client point's trace_id (the parent the callee must see), the status and the
body.
"""

import json
import sys
import urllib.request

from osprofiler import profiler, web


def main():
    key, url = sys.argv[1], sys.argv[2]
    prof = profiler.init(key)
    profiler.start("python-client")
    headers = web.get_trace_id_headers()
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        status = response.status
        body = response.read().decode()
    trace_id = prof.get_id()
    profiler.stop()
    print(json.dumps({
        "base_id": prof.get_base_id(),
        "trace_id": trace_id,
        "status": status,
        "body": body,
        "headers": sorted(headers),
    }))


if __name__ == "__main__":
    main()
