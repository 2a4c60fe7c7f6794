#!/usr/bin/env python3
"""Cold start of each Lambda binary, as Lambda sees it: the time from exec to the binary's first
`GET /runtime/invocation/next` on a Lambda Runtime API (served here by a minimal stand-in), and
its resident memory at that moment. Prints a table of medians over N runs.

  coldstart.py BIN_DIR [N]      (BIN_DIR holds release builds of flights, alerts, sms)
"""

import http.server
import os
import statistics
import subprocess
import sys
import threading
import time

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
    "PATH": os.environ["PATH"],
    "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
    "AWS_LAMBDA_FUNCTION_NAME": "bench",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
    "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    # As in Lambda with settings at hand: flights and alerts build their (lazy) pool from it.
    "DATABASE_URL": "mysql://bench:bench@127.0.0.1:3306/bench",
    "FLIGHTWATCH_ALERTS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:bench",
    "FLIGHTWATCH_DEAD_LETTER_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:bench-dlq",
    "RUST_LOG": "warn",
}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


print(f"cold start to first /next, median of {RUNS} runs (this machine; Lambda's own init overhead not included)")
print(f"{'function':<10} {'start (ms)':>10} {'p90 (ms)':>9} {'RSS (MiB)':>10} {'binary (MiB)':>13}")
for name in ("flights", "alerts", "sms"):
    path = os.path.join(BIN_DIR, name)
    times, rss = [], []
    for _ in range(RUNS):
        first_next.clear()
        start = time.perf_counter()
        proc = subprocess.Popen([path], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not first_next.wait(10):
            proc.kill()
            sys.exit(f"{name} never asked for an event")
        times.append((time.perf_counter() - start) * 1000)
        rss.append(rss_kib(proc.pid) / 1024)
        proc.kill()
        proc.wait()
    times.sort()
    print(f"{name:<10} {statistics.median(times):>10.1f} {times[int(len(times) * 0.9) - 1]:>9.1f} "
          f"{statistics.median(rss):>10.1f} {os.path.getsize(path) / 2**20:>13.1f}")
server.shutdown()
