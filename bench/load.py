#!/usr/bin/env python3
"""Request latency of the local stack over HTTP (one client connection, sequential requests):
GET /health (two `SELECT 1`: what any request pays with this client on this machine, against
which the others read), POST /flights (10 passengers), POST /notifications (a delay of another
of those flights each time, so each is recorded and its 10 recipients handed out and texted,
within the spend limits of one flight), GET /alerts (a page of 50), each after 30 unmeasured
ones. Prints p50/p90/p99 and requests/s.

  load.py BASE_URL [N] [--save FILE]
  load.py BASE_URL [N] --sql-log LOG --against FILE

The second form reads each request's SQL floor from the stack's log (run with
RUST_LOG=warn,flightwatch_api=info,sqlx=debug,tower_http=debug: the request spans, the
statements, the waits for a connection, the ends of requests): the time sqlx measured for every statement
the request issued, on its own connection and data, summed per request. It prints the floors
next to the latencies of the first form's run (saved in FILE), measured with logging off, since
writing a line per statement would itself slow the requests down.
"""

import argparse
import gc
import http.client
import json
import re
import statistics
import sys
import time
import urllib.parse

args = argparse.ArgumentParser()
args.add_argument("base")
args.add_argument("n", nargs="?", type=int, default=300)
args.add_argument("--save")
args.add_argument("--sql-log")
args.add_argument("--against")
args = args.parse_args()
if bool(args.sql_log) != bool(args.against):
    sys.exit("--sql-log and --against go together")

base = urllib.parse.urlparse(args.base)
N = args.n
conn = http.client.HTTPConnection(base.hostname, base.port)
headers = {"content-type": "application/json", "x-api-key": "bench-key"}


def call(method, path, body=None):
    start = time.perf_counter()
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    resp = conn.getresponse()
    resp.read()
    if resp.status >= 300:
        sys.exit(f"{method} {path}: {resp.status}")
    return (time.perf_counter() - start) * 1000


def flight(i):
    return {"flightNumber": f"BN{i % 9000 + 1}", "origin": "SFO", "destination": "JFK",
            "scheduledDeparture": "2037-12-01T08:05:00-08:00", "scheduledArrival": "2037-12-01T16:40:00-05:00",
            "passengers": [{"name": f"P {j}", "email": f"p{j}@example.com", "phone": f"+1415555{j:04}"} for j in range(10)]}


def pct(samples, p):
    samples = sorted(samples)
    return samples[min(len(samples) - 1, int(len(samples) * p))]


ANSI = re.compile(r"\x1b\[[0-9;]*m")
ELAPSED = re.compile(r"elapsed_secs=([0-9.eE+-]+)")
# sqlx spells it so.
ACQUIRED = re.compile(r"aquired_after_secs=([0-9.eE+-]+)")


class SqlLog:
    """The statements sqlx logged inside request spans, summed per request: a request ends at
    tower-http's "finished processing request", and requests are sequential."""

    def __init__(self, path):
        self.file = open(path, encoding="utf-8", errors="replace")

    def floors(self, route):
        """Per request: (its statements' time, its waits for a pooled connection), in ms."""
        done, sql, wait = [], 0.0, 0.0
        for line in self.file:
            line = ANSI.sub("", line)
            if f"route={route}}}" not in line:
                continue  # the relay's and the sms handler's statements run outside requests
            if "sqlx::query" in line and (m := ELAPSED.search(line)):
                sql += float(m.group(1)) * 1000
            elif "sqlx::pool::acquire" in line and (m := ACQUIRED.search(line)):
                wait += float(m.group(1)) * 1000
            elif "finished processing request" in line:
                done.append((sql, wait))
                sql, wait = 0.0, 0.0
        return done


endpoints = [
    ("GET /health", "/health", lambda i: call("GET", "/health")),
    ("POST /flights", "/flights", lambda i: call("POST", "/flights", flight(i))),
    ("POST /notifications", "/notifications", lambda i: call("POST", "/notifications", {
        "flightNumber": f"BN{i % 9000 + 1}", "departureDate": "2037-12-01", "event": "DELAYED",
        "reason": "Late inbound aircraft", "estimatedDeparture": "2037-12-01T10:30:00-08:00"})),
    ("GET /alerts", "/alerts", lambda i: call("GET", "/alerts?limit=50")),
]

# Unmeasured requests before each endpoint's timed ones (on flights of their own, N to N + WARM):
# the first use of each statement on the connection prepares it, and first requests fault in
# pages, which are no part of a running stack's tail.
WARM = 30


def run(request):
    for i in range(N, N + WARM):
        request(i)
    return [request(i) for i in range(N)]


# The client's cyclic garbage collector pauses the client, not the stack: off while timing.
gc.disable()

if not args.sql_log:
    print(f"{'request':<22} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'req/s':>9}   ({N} sequential requests each)")
    saved = {}
    for name, _, request in endpoints:
        samples = run(request)
        saved[name] = samples
        print(f"{name:<22} {statistics.median(samples):>8.2f} {pct(samples, 0.9):>8.2f} "
              f"{pct(samples, 0.99):>8.2f} {len(samples) / (sum(samples) / 1000):>9.0f}")
    if args.save:
        with open(args.save, "w") as f:
            json.dump(saved, f)
else:
    with open(args.against) as f:
        latencies = json.load(f)
    log = SqlLog(args.sql_log)
    print(f"{'request':<22} {'SQL p50':>8} {'SQL p99':>8} {'p50 ×':>7} {'p99 − SQL p99':>14} {'wait p99':>9}   "
          "(SQL: the request's statements as sqlx timed them; ×, −: the run above against it;")
    print(f"{'':<22} {'':>8} {'':>8} {'':>7} {'':>14} {'':>9}    wait: for a pooled connection, where logged)")
    for name, route, request in endpoints:
        run(request)
        time.sleep(0.2)  # the last lines reach the log
        requests = log.floors(route)[WARM:]
        if len(requests) < N:
            sys.exit(f"{name}: {len(requests)} of {N} requests in the log; is RUST_LOG set as documented?")
        floors = [sql for sql, _ in requests]
        floor50, floor99 = statistics.median(floors), pct(floors, 0.99)
        ran = latencies[name]
        ratio = f"{statistics.median(ran) / floor50:>7.2f}" if floor50 >= 0.01 else f"{'-':>7}"
        print(f"{name:<22} {floor50:>8.2f} {floor99:>8.2f} {ratio} "
              f"{pct(ran, 0.99) - floor99:>+14.2f} {pct([w for _, w in requests], 0.99):>9.2f}")
