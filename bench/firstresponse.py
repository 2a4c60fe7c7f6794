#!/usr/bin/env python3
"""First response of each Lambda binary to a realistic event, against real services, as ratios to
the hello-world baseline (issue 13): a Lambda Runtime API stand-in hands each freshly started
process one event, then the same event again, and times

- init: exec to the first `GET /runtime/invocation/next`;
- first: exec to the first response (init, the settings, the first database connection or the
  first AWS clients, and the handler);
- warm: the second response's handler time (the same event, connection and clients ready);
- S3 settings: init with the JDBC properties in S3 (moto) minus init with `DATABASE_URL`.

flights answers `POST /flights` (tests/lambda/fixtures/register-flight.json) and alerts
`GET /alerts` (list-alerts.json), each connected as its own database user; sms an SNS event with
10 recipients, texted through moto. first - warm - init is what the first request pays once (the
database connection, the AWS clients); the budget is first <= baseline first + 10 ms, excluding
the S3 and database round trips.

  firstresponse.py BIN_DIR N      (run by scripts/bench.sh, which provides the environment:
                                   BENCH_DATABASE_URL_FLIGHTS, BENCH_DATABASE_URL_ALERTS,
                                   AWS_ENDPOINT_URL for moto; needs boto3)
"""

import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import boto3

from lambda_env import lambda_env

BIN_DIR = sys.argv[1]
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "lambda" / "fixtures"
MOTO = os.environ["AWS_ENDPOINT_URL"]


class Stand:
    """What a runtime API stand-in does for the one process it serves."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset(None)

    def reset(self, event):
        self.event = event
        self.served = 0
        self.times = {}
        self.done = threading.Event()



class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        stand = self.server.stand
        if not self.path.endswith("/runtime/invocation/next"):
            self.send_response(404)
            self.end_headers()
            return
        with stand.lock:
            n = stand.served
            stand.served += 1
            stand.times.setdefault("next", time.perf_counter())
            if n < 2:
                stand.times[f"given{n}"] = time.perf_counter()
        if n >= 2:
            time.sleep(5)  # nothing more to hand out
            self.send_response(204)
            self.end_headers()
            return
        body = json.dumps(stand.event() if callable(stand.event) else stand.event).encode()
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", f"req-{n}")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                         "arn:aws:lambda:us-east-1:123456789012:function:bench")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        payload = self.rfile.read(length)
        now = time.perf_counter()
        stand = self.server.stand
        with stand.lock:
            if "/req-0/" in self.path:
                stand.times["first"] = now
                stand.times["first_body"] = payload
            elif "/req-1/" in self.path:
                stand.times["warm"] = now
                stand.done.set()
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


aws = dict(endpoint_url=MOTO, region_name="us-east-1",
           aws_access_key_id="bench", aws_secret_access_key="bench")
s3, sns = boto3.client("s3", **aws), boto3.client("sns", **aws)
bucket = f"bench-config-{os.getpid()}"
claims = f"bench-claims-{os.getpid()}"
s3.create_bucket(Bucket=bucket)
s3.create_bucket(Bucket=claims)
reports = sns.create_topic(Name=f"bench-reports-{os.getpid()}")["TopicArn"]
alerts_topic = sns.create_topic(Name=f"bench-alerts-{os.getpid()}")["TopicArn"]


def jdbc(url):
    """A mysql:// URL as the JDBC properties file the deployer writes."""
    from urllib.parse import urlparse
    u = urlparse(url)
    return (f"jdbc.url=jdbc:mysql://{u.hostname}:{u.port or 3306}{u.path}?sslMode=DISABLED\n"
            f"jdbc.username={u.username}\njdbc.password={u.password}\n").encode()


for fn in ("flights", "alerts"):
    s3.put_object(Bucket=bucket, Key=f"bench/{fn}.properties",
                  Body=jdbc(os.environ[f"BENCH_DATABASE_URL_{fn.upper()}"]))

base_env = {
    **lambda_env(os.environ["PATH"], 0),  # each run's own port: run_once
    "AWS_ENDPOINT_URL": MOTO,
    "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH": "true",
    "FLIGHTWATCH_ALERTS_TOPIC_ARN": alerts_topic,
    "FLIGHTWATCH_SMS_CLAIMS_BUCKET": claims,
    "FLIGHTWATCH_DELIVERY_REPORTS_TOPIC_ARN": reports,
}


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


def sms_event():
    """An SNS event with 10 recipients, a new hand-out each time (claims would skip a repeat)."""
    event = fixture("sns-alert.json")
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message["handout"] = str(uuid.uuid4())
    message["recipients"] = [f"+1415555{i:04d}" for i in range(10)]
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    return event


EVENTS = {
    "flights": lambda: fixture("register-flight.json"),
    "alerts": lambda: fixture("list-alerts.json"),
    "sms": sms_event,
}


def run_once(path, event, env):
    """(init, first, warm) in ms for one fresh process, and the first response's body."""
    # A Runtime API of its own for each process: the killed process's last /next, still in
    # flight on its connection, would otherwise take the next process's first event.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.block_on_close = False  # not for the killed process's /next, asleep in its handler
    server.stand = stand = Stand()
    stand.reset(event)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}"}
    start = time.perf_counter()
    proc = subprocess.Popen([path], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not stand.done.wait(30):
        proc.kill()
        sys.exit(f"{path} did not answer two events: {stand.times}")
    t = stand.times
    proc.kill()
    proc.wait()
    server.shutdown()
    server.server_close()
    ms = lambda a, b: (b - a) * 1000  # noqa: E731
    return ms(start, t["next"]), ms(start, t["first"]), ms(t["given1"], t["warm"]), t["first_body"]


def env_for(fn, settings):
    env = dict(base_env)
    if fn in ("flights", "alerts"):
        if settings == "s3":
            env["FLIGHTWATCH_CONFIG_BUCKET"] = bucket
            env["FLIGHTWATCH_CONFIG_KEY"] = f"bench/{fn}.properties"
        else:
            env["DATABASE_URL"] = os.environ[f"BENCH_DATABASE_URL_{fn.upper()}"]
    return env


def median(xs):
    return statistics.median(xs)


print(f"first response to a realistic event, median of {RUNS} fresh processes alternating with "
      "the baseline (this machine; real MariaDB, moto for S3 and SNS)")
print(f"{'function':<13} {'init':>6} {'first':>7} {'x base':>7} {'warm':>6} {'first-warm-init':>16} "
      f"{'S3 settings':>12}   (ms)")
baseline = os.path.join(BIN_DIR, "hello-lambda")
for fn in ("flights", "alerts", "sms"):
    path = os.path.join(BIN_DIR, fn)
    rows = {"hello-lambda": [], fn: [], f"{fn}-s3": []}
    for _ in range(RUNS):
        rows["hello-lambda"].append(run_once(baseline, {"ping": 1}, base_env))
        rows[fn].append(run_once(path, EVENTS[fn], env_for(fn, "url")))
        if fn != "sms":
            rows[f"{fn}-s3"].append(run_once(path, EVENTS[fn], env_for(fn, "s3")))
    body = rows[fn][-1][3].decode(errors="replace")
    base_first = median([r[1] for r in rows["hello-lambda"]])
    for label in ("hello-lambda", fn):
        init, first, warm = (median([r[i] for r in rows[label]]) for i in range(3))
        s3_cost = ""
        if label != "hello-lambda" and rows[f"{fn}-s3"]:
            s3_cost = f"{median([r[0] for r in rows[f'{fn}-s3']]) - init:.1f}"
        print(f"{label:<13} {init:>6.1f} {first:>7.1f} {first / base_first:>7.2f} {warm:>6.1f} "
              f"{first - warm - init:>16.1f} {s3_cost:>12}")
    print(f"  {fn}'s first answer: {body[:140]}")
