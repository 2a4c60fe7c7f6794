#!/usr/bin/env python3
"""Cold start of each Lambda binary, as Lambda sees it: the time from exec to the binary's first
`GET /runtime/invocation/next` on a Lambda Runtime API (served here by a minimal stand-in), and
its resident memory at that moment. Each function runs alternately with `hello-lambda` (the
smallest lambda_runtime function, same profile), so both see the same machine, and the table
gives medians over N runs with the ratio to that baseline.

  coldstart.py BIN_DIR [N]      (BIN_DIR holds release builds of hello-lambda, flights, alerts, sms,
                                watch)
"""

import http.server
import os
import statistics
import subprocess
import sys
import threading
import time

from lambda_env import lambda_env

BIN_DIR = sys.argv[1]
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
first_next = threading.Event()


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next"):
            first_next.set()
            time.sleep(5)  # never hand out an event: only the start-up is measured
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
threading.Thread(target=server.serve_forever, daemon=True).start()
port = server.server_address[1]

env = {
    **lambda_env(os.environ["PATH"], port),
    # As in Lambda with settings at hand: flights and alerts build their (lazy) pool from it.
    "DATABASE_URL": "mysql://bench:bench@127.0.0.1:3306/bench",
    "FLIGHTWATCH_ALERTS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:bench",
    "FLIGHTWATCH_SMS_CLAIMS_BUCKET": "bench-sms-claims",
    "FLIGHTWATCH_DELIVERY_REPORTS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:bench-reports",
    # watch: its key is read from S3 on the first event, not at start.
    "FLIGHTWATCH_CONFIG_BUCKET": "bench-config",
    "FLIGHTWATCH_CONFIG_KEY": "bench/watch.properties",
    "FLIGHTWATCH_FLIGHTAWARE_TOKEN": "bench-feed-token-0123456789abcdefghijkl",
    "FLIGHTWATCH_FEED_URL": "https://api.example.com/bench/feeds/flightaware",
}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start_once(path):
    """Milliseconds from exec to the first /next, and the RSS (MiB) then."""
    first_next.clear()
    start = time.perf_counter()
    proc = subprocess.Popen([path], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not first_next.wait(10):
        proc.kill()
        sys.exit(f"{path} never asked for an event")
    took = (time.perf_counter() - start) * 1000
    rss = rss_kib(proc.pid) / 1024
    proc.kill()
    proc.wait()
    return took, rss


print(f"cold start to first /next, median of {RUNS} runs alternating with the baseline "
      "(this machine; Lambda's own init overhead not included)")
print(f"{'function':<13} {'start (ms)':>10} {'x base':>7} {'p90 (ms)':>9} {'RSS (MiB)':>10} {'x base':>7} "
      f"{'binary (MiB)':>13}")
baseline = os.path.join(BIN_DIR, "hello-lambda")
for name in ("flights", "alerts", "sms", "watch"):
    path = os.path.join(BIN_DIR, name)
    runs = {"hello-lambda": ([], []), name: ([], [])}
    for _ in range(RUNS):
        for label, p in (("hello-lambda", baseline), (name, path)):
            took, rss = start_once(p)
            runs[label][0].append(took)
            runs[label][1].append(rss)
    base_t, base_rss = (statistics.median(v) for v in runs["hello-lambda"])
    for label, p in (("hello-lambda", baseline), (name, path)):
        times, rss = sorted(runs[label][0]), runs[label][1]
        t, r = statistics.median(times), statistics.median(rss)
        print(f"{label:<13} {t:>10.1f} {t / base_t:>7.2f} {times[int(len(times) * 0.9) - 1]:>9.1f} "
              f"{r:>10.1f} {r / base_rss:>7.2f} {os.path.getsize(p) / 2**20:>13.1f}")
server.shutdown()
