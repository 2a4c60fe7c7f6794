#!/usr/bin/env python3
"""Request latency of the local stack over HTTP (one client connection, sequential requests):
POST /flights (10 passengers), POST /notifications (a delay of another of those flights each
time, so each is recorded and its 10 recipients handed out and texted, within the spend limits
of one flight), GET /alerts (a page of 50). Prints p50/p90/p99 and requests/s.

  load.py BASE_URL [N]
"""

import http.client
import json
import statistics
import sys
import time
import urllib.parse

base = urllib.parse.urlparse(sys.argv[1])
N = int(sys.argv[2]) if len(sys.argv) > 2 else 300
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


def report(name, samples):
    samples.sort()
    pct = lambda p: samples[min(len(samples) - 1, int(len(samples) * p))]
    total = sum(samples) / 1000
    print(f"{name:<22} {statistics.median(samples):>8.2f} {pct(0.9):>8.2f} {pct(0.99):>8.2f} {len(samples) / total:>9.0f}")


print(f"{'request':<22} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'req/s':>9}   ({N} sequential requests each)")
report("POST /flights", [call("POST", "/flights", flight(i)) for i in range(N)])
report("POST /notifications", [call("POST", "/notifications", {
    "flightNumber": f"BN{i % 9000 + 1}", "departureDate": "2037-12-01", "event": "DELAYED",
    "reason": "Late inbound aircraft", "estimatedDeparture": "2037-12-01T10:30:00-08:00"}) for i in range(N)])
report("GET /alerts", [call("GET", "/alerts?limit=50") for _ in range(N)])
