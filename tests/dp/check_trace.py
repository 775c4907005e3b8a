"""Checks a `lmt train --trace` file: Chrome's JSON trace-event format as chrome://tracing and
Perfetto read it. Usage: check_trace.py TRACE RANKS FIRST LAST [LAUNCH]
- the object form {"traceEvents": [...]}; every event has name, ph, ts, pid, tid;
- complete events ("X") have dur >= 0; async all-reduce spans ("b"/"e") pair up by id, end after
  they begin, and carry bytes > 0;
- every rank is a process with one "step" event per traced step, numbered FIRST..LAST, and each
  phase of a step lies inside that step on the same thread;
- the gradient all-reduce of every traced step appears on every rank (ranks > 1);
- LAUNCH "backward": some bucket of every traced step was launched during backward (overlap);
  "finish": none was (one bucket: finish() launches it);
- the loader's batches appear on a thread named "loader".
Exits non-zero with one line naming the first violation."""
import json
import sys
from collections import defaultdict


def fail(message):
    print("FAIL: trace: " + message)
    sys.exit(1)


path, ranks, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
launch = sys.argv[5] if len(sys.argv) > 5 else None
with open(path) as f:
    doc = json.load(f)
events = doc.get("traceEvents")
if not isinstance(events, list) or not events:
    fail("no traceEvents list")
for e in events:
    for key in ("name", "ph", "ts" if e.get("ph") != "M" else "name", "pid", "tid"):
        if key not in e:
            fail("event without %r: %s" % (key, e))
    if e["ph"] != "M" and not isinstance(e["ts"], int):
        fail("ts is not an integer: %s" % e)
    if e["ph"] == "X" and not (isinstance(e.get("dur"), int) and e["dur"] >= 0):
        fail("complete event without dur >= 0: %s" % e)

steps = defaultdict(list)  # pid -> step events
phases = defaultdict(list)
spans = {}
allreduce_per_pid = defaultdict(int)
during_backward = defaultdict(int)  # pid -> spans launched during backward
for e in events:
    if e["ph"] == "X" and e["name"] == "step":
        steps[e["pid"]].append(e)
    elif e["ph"] == "X" and e.get("cat") == "step":
        phases[e["pid"]].append(e)
    elif e["ph"] in ("b", "e"):
        key = (e["pid"], e.get("cat"), e.get("id"))
        if e["ph"] == "b":
            if key in spans:
                fail("async id begun twice: %s" % e)
            if not e.get("args", {}).get("bytes", 0) > 0:
                fail("all-reduce span without bytes: %s" % e)
            spans[key] = e
        else:
            begin = spans.pop(key, None)
            if begin is None or e["ts"] < begin["ts"]:
                fail("async end without an earlier begin: %s" % e)
            allreduce_per_pid[e["pid"]] += 1
            if begin.get("args", {}).get("launched_during_backward") is True:
                during_backward[e["pid"]] += 1
if spans:
    fail("async spans never ended: %s" % list(spans.values())[:2])

names = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
if sorted(names) != list(range(ranks)):
    fail("processes %s, expected ranks 0..%d" % (sorted(names), ranks - 1))
want = list(range(first, last + 1))
for pid in range(ranks):
    got = sorted(e["args"]["step"] for e in steps[pid])
    if got != want:
        fail("rank %d traced steps %s, expected %s" % (pid, got, want))
    spans_of = [(s["tid"], s["ts"], s["ts"] + s["dur"]) for s in steps[pid]]
    for p in phases[pid]:
        if not any(t == p["tid"] and b <= p["ts"] and p["ts"] + p["dur"] <= end
                   for t, b, end in spans_of):
            if p["name"] != "checkpoint":
                fail("rank %d phase outside every step: %s" % (pid, p))
    if len({p["name"] for p in phases[pid]}) < 5:
        fail("rank %d has only phases %s" % (pid, sorted({p["name"] for p in phases[pid]})))
    if ranks > 1 and allreduce_per_pid[pid] < len(want):
        fail("rank %d: %d all-reduce spans for %d steps" % (pid, allreduce_per_pid[pid], len(want)))
    if launch == "backward" and during_backward[pid] < len(want):
        fail("rank %d: %d of %d steps launched a bucket during backward"
             % (pid, during_backward[pid], len(want)))
    if launch == "finish" and during_backward[pid]:
        fail("rank %d: %d buckets launched during backward, expected all from finish()"
             % (pid, during_backward[pid]))
    loader = {e["tid"] for e in events if e["pid"] == pid and e["name"] == "thread_name"
              and e["args"]["name"] == "loader"}
    if not any(e["pid"] == pid and e["tid"] in loader and e["name"] == "loader: assemble batch"
               for e in events):
        fail("rank %d: no 'loader: assemble batch' event on a thread named loader" % pid)
print("trace: %d events, %d ranks, steps %d..%d, %d all-reduce spans on rank 0"
      % (len(events), ranks, first, last, allreduce_per_pid[0]))
