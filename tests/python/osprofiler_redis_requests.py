"""Writes requests into a Redis store with osprofiler's own profiler and
`redis` driver, as a Python OpenStack service would.

Usage: osprofiler_redis_requests.py CONNECTION_STRING N

Makes N requests, each `profiler.init` + `wsgi` > `db` > `db-query` and a
second `db`, and prints their base_ids, one per line.
"""

import sys
import time

from oslo_config import cfg
from osprofiler import notifier, opts, profiler


def main():
    connection_string, n = sys.argv[1], int(sys.argv[2])
    opts.set_defaults(cfg.CONF)
    notifier.set(notifier.create(connection_string, project="nova", service="api"))
    for _ in range(n):
        profiler.init("SECRET_KEY")
        base_id = profiler.get().get_base_id()
        with profiler.Trace("wsgi", info={"request": {"path": "/", "query": "",
                                                      "method": "GET", "scheme": "http"}}):
            with profiler.Trace("db"):
                with profiler.Trace("db-query"):
                    time.sleep(0.002)
            with profiler.Trace("db"):
                time.sleep(0.001)
        profiler.clean()
        print(base_id, flush=True)


if __name__ == "__main__":
    main()
