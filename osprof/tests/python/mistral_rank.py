"""Mistral's rank rules (docs/protocol.md, "The rank report"), to compute the expected
report of a log this reader handles correctly.

Usage: mistral_rank.py LOG [by-suffix]  (the report goes to stdout)

With `by-suffix`, a line is a stop line when its sixth token ends in
'-stop' (instead of the length test, which drops durations of 11 characters
and more: any span over 1000 s): the same rules on a correctly read log.

As Mistral's tools/rank_profiled_methods.py: split each line on
whitespace; a line whose second token is longer than 10 characters is a
start line and is skipped; otherwise the second token is the duration and
the sixth token minus its last 5 characters ('-stop') the name. Per name:
total, max, count; rows sorted by total, descending, ties in first-seen
order (sorted() is stable, also with reverse=True).
"""
import sys

BY_SUFFIX = len(sys.argv) > 2 and sys.argv[2] == "by-suffix"
stats = {}
with open(sys.argv[1]) as f:
    for line in f:
        tokens = line.split()
        if BY_SUFFIX:
            if len(tokens) < 6 or not tokens[5].endswith("-stop"):
                continue
        elif len(tokens[1]) > 10:
            continue
        duration = float(tokens[1])
        name = tokens[5][:-5]
        s = stats.setdefault(name, [0.0, 0.0, 0])
        s[0] += duration
        s[1] = max(s[1], duration)
        s[2] += 1

rows = sorted(stats.items(), key=lambda kv: kv[1][0], reverse=True)
out = ["Total time | Max time | Avg time | Occurrences | Trace name",
       "-" * 91]
for name, (total, longest, count) in rows:
    out.append("{:<12.3f} {:<10.3f} {:<10.3f} {:<13d} {}".format(
        total, longest, total / count, count, name))
sys.stdout.write("\n".join(out) + "\n")
