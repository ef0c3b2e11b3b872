"""Writes a Mistral profiler log using the real osprofiler library.

Usage: mistral_log.py OUT_PATH SEED [safe]

With `safe`, no clock step is over a second, so that every duration has at
most 10 characters and Mistral's own script reads the whole log correctly.

osprofiler makes the ids, the names, the nesting and the start/stop
sequence (profiler.init / profiler.start / profiler.stop and the
@profiler.trace decorator, on two threads whose lines interleave). The
notifier writes each event as Mistral's profiler notifier does
(mistral/utils/profiler.py): timestamp, 8 spaces or str(delta) of the
stop minus the start timestamp, base_id, parent_id, trace_id, name,
' <- !!!' after a stop slower than 0.5 s, and json.dumps of the db info.

The timestamps come from a per-thread virtual clock driven by a seeded
random generator instead of the wall clock, so that the log is the same on
every run and contains the float forms str() writes for tiny and huge
durations (9.4e-05, 1e-06, 0.0, 1200.5).
"""
import datetime
import json
import random
import sys
import threading
import uuid

from osprofiler import notifier, profiler

OUT = sys.argv[1]
SEED = int(sys.argv[2])
SAFE = len(sys.argv) > 3 and sys.argv[3] == "safe"
EPOCH = datetime.datetime(2020, 2, 27, 8, 4, 25, 789433)
# Clock steps in microseconds: many tiny ones, some slow ones, one of
# 1200.5 s now and then.
STEPS = [0, 1, 94, 94, 6782, 12345, 545760, 120, 3, 1200500000]
WEIGHTS = [3, 2, 3, 1, 4, 3, 1, 4, 2, 0 if SAFE else 1]

lock = threading.Lock()
local = threading.local()
out = open(OUT, "w")


def notify(info, context=None):
    rng = local.rng
    local.now += datetime.timedelta(
        microseconds=rng.choices(STEPS, WEIGHTS)[0])
    timestamp = local.now
    attrs = [
        timestamp.strftime("%Y-%m-%dT%H:%M:%S.%f"),
        info["base_id"],
        info["parent_id"],
        info["trace_id"],
        info["name"],
    ]
    if info["name"].endswith("-start"):
        local.starts[info["trace_id"]] = timestamp
        attrs.insert(1, " " * 8)
    if info["name"].endswith("-stop"):
        delta = (timestamp - local.starts.pop(info["trace_id"])).total_seconds()
        attrs.insert(1, str(delta))
        if delta > 0.5:
            attrs.append(" <- !!!")
    if "info" in info and "db" in info["info"]:
        attrs.append(json.dumps(info["info"]["db"]))
    with lock:
        out.write(" ".join(attrs) + "\n")


@profiler.trace("db-query")
def query(i):
    return i


@profiler.trace("engine-run-task")
def run_task(rng, depth):
    for i in range(rng.randint(0, 3)):
        query(i)
    if depth < 3 and rng.random() < 0.5:
        run_task(rng, depth + 1)


def serve(worker):
    local.rng = random.Random(SEED * 100 + worker)
    local.now = EPOCH + datetime.timedelta(seconds=worker)
    local.starts = {}
    rng = local.rng
    for r in range(40):
        base = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        profiler.init("SECRET_KEY", base_id=base, parent_id=base)
        profiler.start("engine-start-workflow")
        profiler.start("workflow-set-state",
                       info={"db": {"statement": "UPDATE x SET s=%s",
                                    "params": {"s": "RUNNING"}}})
        profiler.stop()
        for _ in range(rng.randint(1, 4)):
            run_task(rng, 0)
        if rng.random() < 0.3:
            profiler.start("engine-on-action-complete")
            profiler.stop()
        profiler.stop()
        profiler.clean()


notifier.set(notify)
threads = [threading.Thread(target=serve, args=(w,)) for w in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
out.close()
