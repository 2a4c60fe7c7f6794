#!/usr/bin/env python3
"""The four Lambda binaries under a real Lambda Runtime API (`cargo lambda watch`), invoked with
realistic event fixtures (API Gateway REST proxy events with a stage and path parameters, an
EventBridge schedule, SNS events), against MariaDB, moto and the fake AeroAPI (`fake-aeroapi`):
settings read from S3, alerts and registrations published to their SNS topics, SMS sent with SNS
Publish, registered flights watched at the provider.

Run by scripts/test.sh, which provides DATABASE_URL (a server this user may create databases on)
and AWS_ENDPOINT_URL (moto). Prints `N passed, N failed` and exits non-zero on any failure.
"""

import base64
import gzip
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
import yaml

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
MOTO = os.environ["AWS_ENDPOINT_URL"]
DB = urllib.parse.urlparse(os.environ["DATABASE_URL"])
class _Template(yaml.SafeLoader):
    """serverless.yml's CloudFormation tags (!Sub, !Ref, ...) read as plain values."""


_Template.add_multi_constructor("!", lambda loader, suffix, node: None)
SERVERLESS = yaml.load((ROOT / "serverless.yml").read_text(), Loader=_Template)
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"==> ok   {name}", file=sys.stderr)
    else:
        failed += 1
        print(f"==> FAIL {name}: {detail}", file=sys.stderr)


def sql(statement):
    subprocess.run(
        ["mariadb", "-h", DB.hostname, "-P", str(DB.port or 3306), "-u", DB.username, "-e", statement],
        env={**os.environ, "MYSQL_PWD": urllib.parse.unquote(DB.password or "")},
        check=True,
    )


def sql_rows(query):
    out = subprocess.run(
        ["mariadb", "-h", DB.hostname, "-P", str(DB.port or 3306), "-u", DB.username, "-N", "-B",
         "-e", query],
        env={**os.environ, "MYSQL_PWD": urllib.parse.unquote(DB.password or "")},
        check=True, capture_output=True, text=True,
    )
    return out.stdout.split()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def moto_data():
    with urllib.request.urlopen(f"{MOTO}/moto-api/data.json") as r:
        return json.load(r)


def sms_to(phone):
    return [s["message"] for s in moto_data()["sns"]["SMS"] if s["phone_number"] == phone]


def topic_messages(arn):
    for t in moto_data()["sns"]["Topic"]:
        if t["arn"] == arn:
            return [n[1] for n in t["sent_notifications"]]
    return []


def main():
    database = f"flightwatch_lambda_{os.getpid()}"
    sql(f"CREATE DATABASE {database}")
    # Each database function runs as the user the deployer provisions for it, with exactly the
    # grants `provision` gives (the same code, through flightwatch-migrate --users), never as admin.
    users = [
        {"role": role, "username": f"fw_{role}_{os.getpid()}", "password": secrets.token_hex(16)}
        for role in ("flights", "alerts")
    ]
    watches = {}
    fake = None
    try:
        db_url = DB._replace(path=f"/{database}").geturl()
        users_file = Path(f"/tmp/flightwatch-lambda-users-{os.getpid()}.json")
        users_file.write_text(json.dumps(users))
        subprocess.run(
            ["cargo", "run", "--quiet", "-p", "flightwatch-mysql", "--bin", "flightwatch-migrate",
             "--", "--users", str(users_file)],
            cwd=ROOT, env={**os.environ, "DATABASE_URL": db_url}, check=True,
        )
        users_file.unlink()

        aws = dict(endpoint_url=MOTO, region_name="us-east-1")
        sns, s3 = boto3.client("sns", **aws), boto3.client("s3", **aws)
        topic = sns.create_topic(Name=f"flightwatch-lambda-alerts-{os.getpid()}")["TopicArn"]
        reports = sns.create_topic(Name=f"flightwatch-lambda-delivery-reports-{os.getpid()}")["TopicArn"]
        flight_events = sns.create_topic(Name=f"flightwatch-lambda-flight-events-{os.getpid()}")["TopicArn"]
        bucket = f"flightwatch-lambda-config-{os.getpid()}"
        s3.create_bucket(Bucket=bucket)
        claims = f"flightwatch-lambda-sms-claims-{os.getpid()}"
        s3.create_bucket(Bucket=claims)
        for user in users:
            properties = (
                f"jdbc.url=jdbc:mysql://{DB.hostname}:{DB.port or 3306}/{database}?sslMode=DISABLED\n"
                f"jdbc.username={user['username']}\njdbc.password={user['password']}\n"
            )
            s3.put_object(Bucket=bucket, Key=f"dev/{user['role']}.properties", Body=properties.encode())
        # The watch function's key, as the deployer writes it; the fake AeroAPI requires it.
        aeroapi_key = secrets.token_hex(16)
        s3.put_object(Bucket=bucket, Key="dev/watch.properties", Body=f"aeroapi.key={aeroapi_key}\n".encode())
        subprocess.run(["cargo", "build", "--quiet", "-p", "flightwatch-local", "--bin", "fake-aeroapi"],
                       cwd=ROOT, check=True)
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        fake = subprocess.Popen([str(target / "debug" / "fake-aeroapi"), "--key", aeroapi_key],
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
        fake_url = fake.stdout.readline().split()[-1]
        feed_token = secrets.token_urlsafe(32)

        common = {
            "FLIGHTWATCH_CONFIG_BUCKET": bucket,
            "FLIGHTWATCH_ALERTS_TOPIC_ARN": topic,
            "FLIGHTWATCH_SMS_CLAIMS_BUCKET": claims,
            "FLIGHTWATCH_DELIVERY_REPORTS_TOPIC_ARN": reports,
            "FLIGHTWATCH_FLIGHT_EVENTS_TOPIC_ARN": flight_events,
            "FLIGHTWATCH_FLIGHTAWARE_TOKEN": feed_token,
            "FLIGHTWATCH_FEED_URL": "https://api.example.com/dev/feeds/flightaware",
            "FLIGHTWATCH_AEROAPI_URL": fake_url,
            "AWS_ENDPOINT_URL": MOTO,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "RUST_LOG": "info",
            # As the functions run in AWS: the provider-wide environment of serverless.yml.
            **{k: str(v) for k, v in SERVERLESS["provider"]["environment"].items()},
        }
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        log_path = Path(f"/tmp/flightwatch-lambda-watch-{os.getpid()}.log")
        log = open(log_path, "w")
        # One runtime per function, as each has its own environment in serverless.yml.
        for function in ("flights", "alerts", "sms", "watch"):
            env_vars = {**common, "FLIGHTWATCH_CONFIG_KEY": f"dev/{function}.properties"}
            # Lambda sets AWS_LAMBDA_LOG_FORMAT from the function's LoggingConfig (serverless.yml).
            logging = SERVERLESS["resources"]["extensions"][f"{function.capitalize()}LambdaFunction"][
                "Properties"].get("LoggingConfig", {})
            if "LogFormat" in logging:
                env_vars["AWS_LAMBDA_LOG_FORMAT"] = logging["LogFormat"]
            port = free_port()
            args = ["cargo", "lambda", "watch", "--ignore-changes", "--package", function,
                    "--invoke-address", "127.0.0.1", "--invoke-port", str(port)]
            for k, v in env_vars.items():
                args += ["--env-var", f"{k}={v}"]
            watches[function] = (port, subprocess.Popen(
                args, cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=log))
        for port, _ in watches.values():
            for _ in range(600):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.5)

        def invoke(function, fixture=None, data=None):
            path = FIXTURES / fixture if fixture else None
            if data is not None:
                path = Path(f"/tmp/flightwatch-{os.getpid()}-{function}.json")
                path.write_text(json.dumps(data))
            out = subprocess.run(
                ["cargo", "lambda", "invoke", function, "--invoke-address", "127.0.0.1",
                 "--invoke-port", str(watches[function][0]), "--data-file", str(path),
                 "--output-format", "json"],
                cwd=ROOT, capture_output=True, text=True, timeout=900,
            )
            if out.returncode != 0:
                return {"invokeError": out.stderr.strip()[-2000:]}
            return json.loads(out.stdout)

        def http(function, fixture):
            r = invoke(function, fixture)
            body = r.get("body")
            return r.get("statusCode"), (json.loads(body) if body else None), r

        status, flight, raw = http("flights", "register-flight.json")
        check("flights: POST /dev/flights registers UA123 (201)",
              status == 201 and flight and flight["flightId"] == "UA123-2037-12-01", raw)
        announced = topic_messages(flight_events)
        check("flights: the registration is announced on the flight events topic, with no passenger",
              len(announced) == 1 and json.loads(announced[0])["flight"]["flightNumber"] == "UA123"
              and "passengers" not in announced[0] and "+1415" not in announced[0], announced)
        missing = set(SERVERLESS["functions"]["watch"]["environment"]) - set(common) - {"FLIGHTWATCH_CONFIG_KEY"}
        check("watch: runs with every variable serverless.yml gives it", not missing, missing)
        # SNS would now invoke watch with the announcement.
        event = json.loads((FIXTURES / "sns-flight-registered.json").read_text())
        event["Records"][0]["Sns"]["Message"] = announced[0] if announced else "{}"
        event["Records"][0]["Sns"]["TopicArn"] = flight_events
        watched = invoke("watch", data=event)
        with urllib.request.urlopen(f"{fake_url}/_fake/alerts") as r:
            book = json.load(r)
        check("watch: the announced flight is watched at AeroAPI, delivering to the feed with its token",
              watched == [{"outcome": "STARTED", "watchId": "1"}]
              and [(a["ident"], a["start"], a["end"]) for a in book["alerts"]] == [("UA123", "2037-12-01", "2037-12-01")]
              and book["alerts"][0]["target_url"] == f"https://api.example.com/dev/feeds/flightaware?token={feed_token}"
              and book["endpoint"] == book["alerts"][0]["target_url"],
              (watched, book))
        again = invoke("watch", data=event)
        check("watch: the same announcement again starts no second watch",
              again == [{"outcome": "ALREADY", "watchId": "1"}], again)
        other = invoke("watch", "sns-flight-registered.json")
        check("watch: the SNS fixture's flight is watched too", other == [{"outcome": "STARTED", "watchId": "2"}], other)
        swept = invoke("watch", "relay-schedule.json")
        check("watch: the hourly sweep ends nothing before departure", swept == {"departed": [], "duplicates": []}, swept)
        broken = json.loads((FIXTURES / "sns-flight-registered.json").read_text())
        broken["Records"][0]["Sns"]["Message"] = '{"version": 9}'
        error = invoke("watch", data=broken)
        check("watch: an unreadable announcement fails as NotificationFailed (retried, then dead-lettered)",
              "NotificationFailed" in json.dumps(error), error)
        status, details, raw = http("flights", "get-flight.json")
        check("flights: GET /dev/flights/{flightId} returns masked contacts",
              status == 200 and details["passengers"][0]["phone"] == "+1415•••0100"
              and "5550100" not in json.dumps(details), raw)
        status, problem, raw = http("flights", "get-unknown-flight.json")
        check("flights: an unknown flight is a 404 problem", status == 404 and problem["status"] == 404, raw)
        status, problem, raw = http("flights", "register-invalid-flight.json")
        check("flights: invalid input is a 400 problem+json",
              status == 400 and raw["multiValueHeaders"].get("content-type") == ["application/problem+json"], raw)

        status, receipt, raw = http("alerts", "report-delay.json")
        check("alerts: POST /dev/notifications is accepted and published (202)",
              status == 202 and receipt["recipients"] == 2 and receipt["publication"] == "PUBLISHED", raw)
        status, again, raw = http("alerts", "report-delay.json")
        check("alerts: the same Idempotency-Key returns the same alert",
              status == 202 and again and receipt and again["alertId"] == receipt["alertId"], raw)
        messages = topic_messages(topic)
        check("alerts: one message on the SNS topic", len(messages) == 1, messages)
        status, page, raw = http("alerts", "list-alerts.json")
        check("alerts: GET /dev/alerts lists the alert",
              status == 200 and [i["alertId"] for i in page["items"]] == [receipt["alertId"]], raw)
        error = invoke("alerts", data={"neither": "a request nor a schedule"})
        check("alerts: an unreadable event fails with errorType UnreadableEvent",
              "UnreadableEvent" in json.dumps(error), error)
        relay = invoke("alerts", "relay-schedule.json")
        check("alerts: the scheduled relay finds nothing due", relay == {"handedOut": 0, "failed": 0, "setAside": 0, "givenUp": 0}, relay)

        # SNS would now invoke sms with the topic's message: hand it over in the Lambda envelope.
        event = json.loads((FIXTURES / "sns-alert.json").read_text())
        event["Records"][0]["Sns"]["Message"] = messages[0] if messages else "{}"
        event["Records"][0]["Sns"]["TopicArn"] = topic
        phones = ["+14155550100", "+447911123456"]
        before = {p: len(sms_to(p)) for p in phones}
        report = invoke("sms", data=event)
        check("sms: the topic's message texts both passengers", report.get("sent") == 2, report)
        text = "UA123 SFO-JFK 1 Dec: DELAYED, now departs 10:30 (was 08:05). Reason: Late inbound aircraft"
        new = {p: sms_to(p)[before[p]:] for p in phones}
        check("sms: SNS Publish to each phone, once, with the alert text",
              all(new[p] == [text] for p in phones), new)
        again = invoke("sms", data=event)
        check("sms: the same message delivered again texts nobody (claimed in S3) and reports it sent",
              again.get("sent") == 0 and again.get("duplicates") == 2
              and all(sms_to(p)[before[p]:] == [text] for p in phones), again)

        # The sms function reported both sends on the reports topic; SNS would now invoke alerts.
        reported = topic_messages(reports)
        outcomes = json.loads(reported[0])["outcomes"] if reported else []
        check("sms: a delivery report, both recipients SENT with the provider's message id",
              len(reported) == 2 and sorted(o["result"] for o in outcomes) == ["SENT", "SENT"]
              and all(o.get("messageId") for o in outcomes), reported)
        event = json.loads((FIXTURES / "delivery-report.json").read_text())
        event["Records"][0]["Sns"]["Message"] = reported[0] if reported else "{}"
        event["Records"][0]["Sns"]["TopicArn"] = reports
        handled = invoke("alerts", data=event)
        check("alerts: the delivery report is recorded", handled == {"handled": 1}, handled)
        status, page, raw = http("alerts", "list-alerts.json")
        check("alerts: GET /dev/alerts counts both recipients as sent",
              status == 200 and page["items"][0]["delivery"] == {"pending": 0, "sent": 2, "delivered": 0, "failed": 0}, raw)
        # SNS's delivery status log lines for those two SMS, as the subscription filter hands
        # them over: one delivered, one not (the recorded samples, with these message ids).
        samples = (FIXTURES / "sns-sms-delivery-status.jsonl").read_text().splitlines()
        lines = [json.loads(s) for s in samples]
        for line, outcome in zip(lines, outcomes):
            line["notification"]["messageId"] = outcome.get("messageId")
        data = {"messageType": "DATA_MESSAGE", "owner": "123456789012",
                "logGroup": "sns/us-east-1/123456789012/DirectPublishToPhoneNumber",
                "logStream": "x", "subscriptionFilters": ["flightwatch-dev-carrier-status"],
                "logEvents": [{"id": str(i), "timestamp": 0, "message": json.dumps(l)}
                              for i, l in enumerate(lines)]}
        packed = base64.b64encode(gzip.compress(json.dumps(data).encode())).decode()
        changed = invoke("alerts", data={"awslogs": {"data": packed}})
        check("alerts: the carrier status is recorded", changed == {"changed": 2, "unreadable": 0}, changed)
        status, page, raw = http("alerts", "list-alerts.json")
        check("alerts: GET /dev/alerts counts one delivered, one undelivered",
              status == 200 and page["items"][0]["delivery"] == {"pending": 0, "sent": 0, "delivered": 1, "failed": 1}, raw)
        handled = invoke("alerts", "delivery-report.json")
        check("alerts: a report about an alert never issued changes nothing", handled == {"handled": 1}, handled)
        broken = json.loads((FIXTURES / "delivery-report.json").read_text())
        broken["Records"][0]["Sns"]["Message"] = '{"version": 9}'
        error = invoke("alerts", data=broken)
        check("alerts: an unreadable report fails as NotificationFailed (retried, then dead-lettered)",
              "NotificationFailed" in json.dumps(error), error)

        before = len(sms_to("+447700900123"))
        report = invoke("sms", "sns-alert.json")
        check("sms: the SNS event fixture texts its three recipients", report.get("sent") == 3, report)
        check("sms: the cancellation reads plainly",
              sms_to("+447700900123")[before:] == ["BA2490 LHR-EDI 2 Dec: CANCELLED. Reason: Crew shortage"],
              sms_to("+447700900123"))
        broken = json.loads((FIXTURES / "sns-alert.json").read_text())
        broken["Records"][0]["Sns"]["Message"] = '{"version": 9}'
        error = invoke("sms", data=broken)
        check("sms: an unreadable message fails as NonRetryable", "NonRetryable" in json.dumps(error), error)
        connected = sql_rows(
            f"SELECT DISTINCT user FROM information_schema.processlist WHERE db = '{database}'")
        check("flights and alerts are connected as their own database users, not as admin",
              sorted(connected) == sorted(u["username"] for u in users), connected)
        logs = log_path.read_text(errors="replace")
        clear = [p for p in ["+14155550100", "+447911123456", "+447700900123", "ada@example.com"] if p in logs]
        check("logs carry no phone number or email in clear", "sms sent" in logs and not clear, clear)
        records = []
        for line in logs.splitlines():
            try:
                records.append(json.loads(line[line.index("{"):]))
            except ValueError:
                pass
        check("the functions log JSON, as Lambda's JSON log format has them",
              any(isinstance(r, dict) and r.get("fields", {}).get("message") == "sms sent" for r in records),
              logs[-2000:])
    finally:
        if fake:
            os.killpg(fake.pid, signal.SIGTERM)
        for _, watch in watches.values():
            os.killpg(watch.pid, signal.SIGTERM)
            try:
                watch.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(watch.pid, signal.SIGKILL)
        if failed and watches:
            print(log_path.read_text(errors="replace")[-20000:], file=sys.stderr)
        for user in users:
            sql(f"DROP USER IF EXISTS '{user['username']}'@'%'")
        sql(f"DROP DATABASE IF EXISTS {database}")
    print(f"lambda: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
