#!/usr/bin/env python3
"""Tests of the deployment checks themselves (check_api.py, gateway_responses.py), on
openapi.yaml and copies of it broken on purpose.

    tests/deploy/test_check_api.py

Plain asserts, no test framework; needs PyYAML (re-runs itself with ~/.cache/flightwatch/venv's
Python like check_api.py). No package or build needed: the whole check_api.py is run on a
stand-in template whose RestApi Body is the spec. Prints one line a test; exits 1 on a failure.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import check_api  # noqa: E402
import gateway_responses  # noqa: E402

SPEC: dict = {}  # openapi.yaml, loaded by main() (after ensure_yaml)


def operation_names(spec):
    return [f"{m.upper()} {p}" for p, m, _ in check_api.operations(spec)]


def without_security(spec, path, method):
    broken = copy.deepcopy(spec)
    del broken["paths"][path][method]["security"]
    return broken


def run_check_api(spec) -> tuple[int, list[str]]:
    """Runs check_api.py on spec (written as JSON, which is YAML) and a template carrying it as
    the RestApi Body; returns its exit code and its `... requires the API key` lines."""
    template = {"Resources": {"ApiGatewayRestApi": {"Type": "AWS::ApiGateway::RestApi",
                                                    "Properties": {"Body": spec}}}}
    with tempfile.TemporaryDirectory() as tmp:
        spec_file, template_file = Path(tmp, "openapi.yaml"), Path(tmp, "template.json")
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        template_file.write_text(json.dumps(template), encoding="utf-8")
        run = subprocess.run(
            [sys.executable, str(HERE / "check_api.py"), str(template_file), "--openapi", str(spec_file)],
            capture_output=True, text=True,
        )
    return run.returncode, [line for line in run.stdout.splitlines() if "requires the API key" in line]


def test_openapi_yaml_requires_the_key_on_every_operation():
    assert len(operation_names(SPEC)) >= 4, operation_names(SPEC)
    assert check_api.api_key_problems(SPEC) == [], check_api.api_key_problems(SPEC)
    assert "security" not in SPEC, "root-level security: API Gateway ignores it, so it only misleads"


def test_each_operation_without_its_own_security_is_rejected():
    for path, method, _ in check_api.operations(SPEC):
        problems = check_api.api_key_problems(without_security(SPEC, path, method))
        assert len(problems) == 1 and problems[0].startswith(f"{method.upper()} {path}: "), problems


def test_a_root_level_security_does_not_count():
    path, method, _ = next(check_api.operations(SPEC))
    broken = without_security(SPEC, path, method)
    broken["security"] = [{"apiKey": []}]
    assert check_api.api_key_problems(broken) == [f"{method.upper()} {path}: no `security` of its own "
                                                  "(a root-level one is not applied by API Gateway)"]


def test_security_must_name_the_api_key_scheme():
    path, method, _ = next(check_api.operations(SPEC))
    for security in ([{"other": []}], [{"apiKey": []}, {}], {"apiKey": []}):
        broken = copy.deepcopy(SPEC)
        broken["paths"][path][method]["security"] = security
        broken["components"]["securitySchemes"]["other"] = {"type": "http", "scheme": "bearer"}
        assert len(check_api.api_key_problems(broken)) == 1, security


def test_public_only_with_the_marker_and_an_explicit_empty_list():
    path, method, _ = next(check_api.operations(SPEC))
    cases = (  # (marker, security or None for absent, accepted)
        (True, [], True),
        (None, [], False),
        (True, None, False),
        (True, [{"apiKey": []}], False),
        ("true", [], False),
    )
    for marker, security, accepted in cases:
        spec = copy.deepcopy(SPEC)
        op = spec["paths"][path][method]
        op.pop("security")
        if marker is not None:
            op[check_api.PUBLIC_MARKER] = marker
        if security is not None:
            op["security"] = security
        assert (check_api.api_key_problems(spec) == []) is accepted, (marker, security)


def test_check_api_script_accepts_the_spec_and_rejects_a_copy_without_one_operations_security():
    _, lines = run_check_api(SPEC)
    assert len(lines) == len(operation_names(SPEC)) and all(line.startswith("ok ") for line in lines), lines
    path, method, _ = next(check_api.operations(SPEC))
    code, lines = run_check_api(without_security(SPEC, path, method))
    assert code == 1
    failed = [line for line in lines if line.startswith("FAIL")]
    assert len(failed) == 1 and f"{method.upper()} {path} requires the API key" in failed[0], lines


# --- on-failure destinations and SQS rights ------------------------------------------------------

QUEUE = "arn:aws:sqs:us-east-1:123456789012:flightwatch-ci-dead-letters"


def destination_template(statements, destination=QUEUE):
    """A function whose role has these statements and whose on-failure destination is given."""
    return {
        "SmsRole": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [
            {"PolicyName": "sms", "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}]}},
        "SmsLambdaFunction": {"Type": "AWS::Lambda::Function",
                              "Properties": {"Role": {"Fn::Sub": "${SmsRole.Arn}"}}},
        "SmsLambdaEvConf": {"Type": "AWS::Lambda::EventInvokeConfig", "Properties": {
            "FunctionName": {"Ref": "SmsLambdaFunction"},
            "DestinationConfig": {"OnFailure": {"Destination": destination}}}},
    }


def send(action="sqs:SendMessage", resource=QUEUE, sid="SendFailedInvocations"):
    return {"Sid": sid, "Effect": "Allow", "Action": action, "Resource": resource}


def test_a_role_may_send_to_its_on_failure_queue_and_nothing_more_in_sqs():
    assert check_api.on_failure_problems(destination_template([send()])) == []
    other = QUEUE.replace("dead-letters", "other")
    rejected = (
        [],  # cannot send to its destination
        [send(resource=other)],  # sends to another queue only
        [send(), send(resource=other, sid="Other")],  # and to another queue
        [send(), send(action="sqs:ReceiveMessage", sid="Read")],  # reads it too
        [send(action=["sqs:SendMessage", "sqs:DeleteMessage"])],
        [send(resource="*")],
    )
    for statements in rejected:
        assert check_api.on_failure_problems(destination_template(statements)), statements
    assert check_api.on_failure_problems(destination_template([send()], destination="dead-letters"))
    topic = "arn:aws:sns:us-east-1:123456789012:flightwatch-ci-dead-letters"
    assert check_api.on_failure_problems(
        destination_template([send("sns:Publish", topic)], destination=topic)) == []
    assert check_api.on_failure_problems(destination_template([send()], destination=topic))


# --- the flight events: flights publishes to their topic only, watch is outside the VPC ----------

EVENTS = "arn:aws:sns:us-east-1:123456789012:flightwatch-ci-flight-events"
ALERTS = "arn:aws:sns:us-east-1:123456789012:flightwatch-ci-alerts"


def events_template(flights_statements=None, watch_statements=(), watch_vpc=False, watch_managed=()):
    """Flights and watch as serverless.yml has them, or changed as given."""
    if flights_statements is None:
        flights_statements = [send("sns:Publish", EVENTS, "PublishFlightEvents")]

    def role(name, statements, managed=()):
        return {"Type": "AWS::IAM::Role", "Properties": {
            "ManagedPolicyArns": [{"Fn::Sub": f"arn:${{AWS::Partition}}:iam::aws:policy/{m}"} for m in managed],
            "Policies": [{"PolicyName": name, "PolicyDocument": {"Version": "2012-10-17",
                                                                  "Statement": list(statements)}}]}}
    watch = {"Role": {"Fn::Sub": "${WatchRole.Arn}"}}
    if watch_vpc:
        watch["VpcConfig"] = {"SecurityGroupIds": ["sg-1"], "SubnetIds": ["subnet-1"]}
    return {
        "FlightsRole": role("flights", flights_statements, ["service-role/AWSLambdaVPCAccessExecutionRole"]),
        "FlightsLambdaFunction": {"Type": "AWS::Lambda::Function", "Properties": {
            "Role": {"Fn::Sub": "${FlightsRole.Arn}"},
            "Environment": {"Variables": {"FLIGHTWATCH_FLIGHT_EVENTS_TOPIC_ARN": EVENTS}}}},
        "WatchRole": role("watch", watch_statements, ["AWSXRayDaemonWriteAccess", *watch_managed]),
        "WatchLambdaFunction": {"Type": "AWS::Lambda::Function", "Properties": watch},
    }


def test_flights_publishes_flight_events_only_and_watch_stays_outside_the_vpc():
    assert check_api.flight_events_problems(events_template()) == []
    rejected = (
        events_template(flights_statements=[]),  # cannot publish them
        events_template(flights_statements=[send("sns:Publish", ALERTS, "Other")]),  # elsewhere
        events_template(flights_statements=[send("sns:Publish", EVENTS, "PublishFlightEvents"),
                                            send("sns:Publish", ALERTS, "Other")]),  # and elsewhere
        events_template(watch_statements=[send("sns:Publish", EVENTS, "Publish")]),
        events_template(watch_statements=[send(["logs:PutLogEvents", "SNS:Publish"], "*", "Mixed")]),
        events_template(watch_vpc=True),
        events_template(watch_managed=["service-role/AWSLambdaVPCAccessExecutionRole"]),
        events_template(watch_statements=[send("ec2:CreateNetworkInterface", "*", "Eni")]),
    )
    for template in rejected:
        assert check_api.flight_events_problems(template), template
    template = events_template()
    del template["FlightsLambdaFunction"]["Properties"]["Environment"]
    assert check_api.flight_events_problems(template)
    template = events_template()
    del template["WatchLambdaFunction"]
    assert check_api.flight_events_problems(template)


# --- gateway_responses.py: its renderer rejects templates that are not always JSON -------------

def gateway_responses_of(spec):
    return copy.deepcopy(spec["x-amazon-apigateway-gateway-responses"])


def with_template(responses, rtype, template):
    responses[rtype]["responseTemplates"] = {"application/json": template}
    return responses


def test_every_gateway_response_of_openapi_yaml_is_always_problem_json():
    problems = gateway_responses.problems(gateway_responses_of(SPEC))
    assert set(gateway_responses.REQUIRED) <= set(problems), sorted(problems)
    assert all(not errs for errs in problems.values()), problems


def test_renderer_rejects_unsafe_templates():
    head = '{"type":"about:blank","title":"Bad Request","status":400,'
    unsafe = (
        # the BAD_REQUEST_BODY template before this check existed
        '{"type":"https://flightwatch.dev/problems/validation","title":"Request validation failed",'
        '"status":400,"detail":"The body does not match the schema: '
        '$context.error.validationErrorString","requestId":"$context.requestId"}',
        head + '"detail":"$context.error.messageString"}',  # quoted twice
        head + '"detail":"$context.error.message"}',
        head + '"detail":"x","stage":"$stageVariables.name"}',
        head + '"detail":"x","ua":"${method.request.header.User-Agent}"}',
        head + '"detail":$context.requestId}',  # a UUID is no JSON value
        head + '"detail":"$util.escapeJavaScript($context.error.message)"}',  # no VTL here
        (head + '"detail":"x"}').replace('"status":400,', '"status":"400",'),  # status no int
        head.replace('"type":"about:blank",', "") + '"detail":"x"}',  # no type
    )
    for template in unsafe:
        responses = with_template(gateway_responses_of(SPEC), "BAD_REQUEST_BODY", template)
        assert gateway_responses.problems(responses)["BAD_REQUEST_BODY"], template
    safe = head + '"detail":$context.error.messageString,"code":"$context.error.responseType"}'
    responses = with_template(gateway_responses_of(SPEC), "BAD_REQUEST_BODY", safe)
    assert gateway_responses.problems(responses)["BAD_REQUEST_BODY"] == []


def test_renderer_wants_problem_json_and_the_default_responses():
    responses = gateway_responses_of(SPEC)
    responses["THROTTLED"]["responseParameters"]["gatewayresponse.header.Content-Type"] = "'application/json'"
    del responses["DEFAULT_5XX"]
    problems = gateway_responses.problems(responses)
    assert problems["THROTTLED"] and problems["DEFAULT_5XX"], problems
    responses = gateway_responses_of(SPEC)
    responses["DEFAULT_4XX"]["statusCode"] = "400"  # would turn a 404 or a 413 into a 400
    assert gateway_responses.problems(responses)["DEFAULT_4XX"]


def main() -> int:
    SPEC.update(check_api.normalize(check_api.load_yaml(check_api.ROOT / "openapi.yaml")))
    tests = [(name, fn) for name, fn in sorted(globals().items()) if name.startswith("test_") and callable(fn)]
    failed = 0
    for name, fn in tests:
        try:
            fn()
            print(f"ok    {name}")
        except Exception:  # noqa: BLE001 - report every failing test
            failed += 1
            print(f"FAIL  {name}")
            traceback.print_exc(file=sys.stdout)
    print(f"test_check_api: {len(tests) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    check_api.ensure_yaml()
    sys.exit(main())
