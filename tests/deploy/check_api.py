#!/usr/bin/env python3
"""Checks the packaged CloudFormation template against openapi.yaml.

    tests/deploy/check_api.py [TEMPLATE] [--openapi FILE]

TEMPLATE defaults to .serverless/cloudformation-template-update-stack.json (written by
`npx serverless package`), FILE to openapi.yaml, both relative to the repository root.

The REST API is deployed from openapi.yaml by reference (the RestApi Body); this makes sure the
template really carries the spec (paths, methods, the API-key requirement of every operation,
the component schemas), that every operation is a Lambda proxy integration with the function
that owns it and that API Gateway may invoke it, that the usage plan throttles and caps each
key, that no function role grants anything on Resource "*" but the one documented SMS
statement, that each asynchronous on-failure destination is a queue or topic its function's
role may send to, with no SQS right beyond that (on_failure_problems), and that the flight
events go from flights (which may publish to that topic only) to watch, which is outside the VPC
and may publish nothing (flight_events_problems). Prints one line a check and
`deploy-check: N passed, N failed`; exits 1 on a failure.

The API key, per operation: API Gateway requires an API key on a method only when that operation
has its own security requirement naming the key (`apiKeyRequired`); a root-level `security` is
not applied on import. So every operation, in openapi.yaml and in the template, must have its own
`security`, a non-empty list each alternative of which names the `apiKey` scheme (type apiKey,
in header, name x-api-key), e.g. `security: [{apiKey: []}]`. A root-level `security` counts for
nothing. The one exception is an operation meant to be public (say a provider's webhook): it
must say both `x-flightwatch-public: true` and `security: []`, explicitly; the marker with any
other `security`, or `security: []` without the marker, fails. api_key_problems(spec) applies
this rule to any spec (tests/deploy/test_check_api.py).

Needs PyYAML to read openapi.yaml: it re-runs itself with ~/.cache/flightwatch/venv's Python when
the running one lacks it, and falls back to the js-yaml that Serverless installs in node_modules.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = Path.home() / ".cache/flightwatch/venv/bin/python"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Which function serves which path: the gateway routing of the README's architecture.
ROUTES = (
    (re.compile(r"^/flights(/.*)?$"), "FlightsLambdaFunction"),
    (re.compile(r"^/notifications$"), "AlertsLambdaFunction"),
    (re.compile(r"^/alerts(/\{alertId\})?$"), "AlertsLambdaFunction"),
    (re.compile(r"^/feeds/flightaware$"), "AlertsLambdaFunction"),
)
# The one statement of a function role allowed on Resource "*": SNS SMS (Publish to a phone
# number) has no resource ARN to name.
SMS_STATEMENT = {"role": "SmsRole", "sid": "SendSms", "action": "sns:Publish"}
INTEGRATION_URI = re.compile(
    r"^arn:(?:aws|\$\{AWS::Partition\}):apigateway:\$\{AWS::Region\}:lambda:path/2015-03-31/"
    r"functions/\$\{(?P<function>[A-Za-z0-9]+)\.Arn\}/invocations$"
)
# Environment the Rust functions read (names are fixed).
FUNCTION_ENV = {
    "FlightsLambdaFunction": {
        "FLIGHTWATCH_CONFIG_BUCKET",
        "FLIGHTWATCH_CONFIG_KEY",
        "FLIGHTWATCH_FLIGHT_EVENTS_TOPIC_ARN",
        "RUST_LOG",
    },
    "AlertsLambdaFunction": {
        "FLIGHTWATCH_CONFIG_BUCKET",
        "FLIGHTWATCH_CONFIG_KEY",
        "FLIGHTWATCH_ALERTS_TOPIC_ARN",
        "FLIGHTWATCH_ALERTS_PER_FLIGHT_PER_DAY",
        "FLIGHTWATCH_SMS_PER_SECOND",
        "FLIGHTWATCH_FLIGHTAWARE_TOKEN",
        "FLIGHTWATCH_DELAY_THRESHOLD_MINUTES",
        "RUST_LOG",
    },
    "SmsLambdaFunction": {
        "FLIGHTWATCH_SMS_CLAIMS_BUCKET",
        "FLIGHTWATCH_DELIVERY_REPORTS_TOPIC_ARN",
        "FLIGHTWATCH_SMS_PER_SECOND",
        "FLIGHTWATCH_SMS_SENDER_ID",
        "RUST_LOG",
    },
    "WatchLambdaFunction": {
        "FLIGHTWATCH_CONFIG_BUCKET",
        "FLIGHTWATCH_CONFIG_KEY",
        "FLIGHTWATCH_FLIGHTAWARE_TOKEN",
        "FLIGHTWATCH_FEED_URL",
        "FLIGHTWATCH_AEROAPI_URL",
        "RUST_LOG",
    },
}


def load_yaml(path: Path):
    try:
        import yaml  # noqa: PLC0415
    except ImportError:
        yaml = None
    if yaml is not None:
        with path.open(encoding="utf-8") as f:
            return yaml.safe_load(f)
    node = shutil.which("node")
    if node and (ROOT / "node_modules/js-yaml").is_dir():
        script = (
            "const y=require('js-yaml'),fs=require('fs');"
            "process.stdout.write(JSON.stringify(y.load(fs.readFileSync(process.argv[1],'utf8'))))"
        )
        out = subprocess.run(
            [node, "-e", script, str(path)],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
        return json.loads(out)
    sys.exit(
        "deploy-check: cannot read YAML: install PyYAML (e.g. into ~/.cache/flightwatch/venv) "
        "or run `npm ci` for js-yaml"
    )


def normalize(value):
    """JSON-comparable form, as Serverless writes the spec into the template: YAML dates become
    ISO strings, and members whose value is null are left out (Serverless drops them, e.g. the
    `nextCursor: null` of an example)."""
    if isinstance(value, dict):
        return {str(k): normalize(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def differences(a, b, pointer="", limit=5):
    """JSON pointers where a and b differ, at most `limit`."""
    out: list[str] = []

    def walk(x, y, p):
        if len(out) >= limit:
            return
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y)):
                q = f"{p}/{k.replace('~', '~0').replace('/', '~1')}"
                if k not in x:
                    out.append(f"{q} only in openapi.yaml")
                elif k not in y:
                    out.append(f"{q} only in the template")
                else:
                    walk(x[k], y[k], q)
        elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
            for i, (xi, yi) in enumerate(zip(x, y)):
                walk(xi, yi, f"{p}/{i}")
        elif x != y:
            out.append(f"{p or '/'}: template {json.dumps(x)[:80]} != spec {json.dumps(y)[:80]}")

    walk(a, b, pointer)
    return out


def operations(doc):
    for path, item in (doc.get("paths") or {}).items():
        for method in HTTP_METHODS:
            if isinstance(item, dict) and method in item:
                yield path, method, item[method]


PUBLIC_MARKER = "x-flightwatch-public"


def api_key_problem(doc, op) -> str | None:
    """Why the operation would not require the API key in API Gateway (None: it does, or it is
    explicitly public). Only the operation's own `security` counts, never the root-level one."""
    schemes = (doc.get("components") or {}).get("securitySchemes") or {}

    def is_api_key(name):
        s = schemes.get(name) or {}
        return s.get("type") == "apiKey" and s.get("in") == "header" and str(s.get("name", "")).lower() == "x-api-key"

    public = op.get(PUBLIC_MARKER) is True
    if "security" not in op:
        return "no `security` of its own (a root-level one is not applied by API Gateway)"
    security = op["security"]
    if not isinstance(security, list):
        return f"`security` is not a list: {security!r}"
    if public:
        return None if security == [] else f"{PUBLIC_MARKER}: true but `security` is {security!r}, not []"
    if not security:
        return f"`security: []` makes it public; say `{PUBLIC_MARKER}: true` if that is meant"
    if not all(isinstance(alt, dict) and any(is_api_key(name) for name in alt) for alt in security):
        return f"`security` {security!r}: not every alternative names the x-api-key header scheme"
    return None


def api_key_problems(doc) -> list[str]:
    """`METHOD /path: why` for every operation of doc that does not require the API key."""
    return [
        f"{method.upper()} {path}: {why}"
        for path, method, op in operations(doc)
        if (why := api_key_problem(doc, op)) is not None
    ]


def ref_target(value):
    """Logical id a value refers to: {Ref: X}, {Fn::GetAtt: [X, ...]}, {Fn::Sub: "${X.Arn}"}."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return att[0] if isinstance(att, list) else str(att).split(".")[0]
        if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            m = re.fullmatch(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z]+)?\}", value["Fn::Sub"])
            if m:
                return m.group(1)
    return None


def as_list(value):
    return value if isinstance(value, list) else [value]


def role_grants(role: dict) -> list[tuple[str, str, object]]:
    """(Sid, action, resource) of every Allow statement of a role's inline policies."""
    return [
        (st.get("Sid", "?"), action, resource)
        for policy in (role.get("Properties") or {}).get("Policies") or []
        for st in as_list((policy.get("PolicyDocument") or {}).get("Statement") or [])
        if st.get("Effect") == "Allow"
        for action in as_list(st.get("Action") or [])
        for resource in as_list(st.get("Resource") or [])
    ]


# What a function's role needs to send to its on-failure destination, by the ARN's service.
DESTINATION_ACTIONS = {"sqs": "sqs:SendMessage", "sns": "sns:Publish"}


def on_failure_destinations(resources: dict) -> dict[str, list]:
    """Function logical id -> the OnFailure destinations of its EventInvokeConfigs."""
    out: dict[str, list] = {}
    for res in resources.values():
        if res.get("Type") != "AWS::Lambda::EventInvokeConfig":
            continue
        props = res.get("Properties") or {}
        dest = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        if dest is not None:
            out.setdefault(ref_target(props.get("FunctionName")), []).append(dest)
    return out


def on_failure_problems(resources: dict) -> list[str]:
    """Lambda sends a failed asynchronous invocation to its on-failure destination with the
    function's own role: each destination must be an SQS queue or SNS topic ARN that the role may
    send to (sqs:SendMessage or sns:Publish on exactly it). And a role's only SQS right is
    sqs:SendMessage to its own function's on-failure queues: nothing else, on no other queue."""
    roles = {rid: r for rid, r in resources.items() if r.get("Type") == "AWS::IAM::Role"}
    role_of = {
        fid: ref_target((fn.get("Properties") or {}).get("Role"))
        for fid, fn in resources.items() if fn.get("Type") == "AWS::Lambda::Function"
    }
    destinations = on_failure_destinations(resources)
    problems = []
    for fid, arns in sorted(destinations.items()):
        role = role_of.get(fid)
        grants = role_grants(roles.get(role, {}))
        for arn in arns:
            parts = arn.split(":") if isinstance(arn, str) else []
            action = DESTINATION_ACTIONS.get(parts[2]) if len(parts) >= 6 and parts[0] == "arn" else None
            if action is None:
                problems.append(f"{fid}: on-failure destination {arn!r} is not an SQS queue or SNS topic ARN")
            elif not any(a.lower() == action.lower() and r == arn for _, a, r in grants):
                problems.append(f"{fid}: its role {role} may not {action} to its on-failure destination {arn}")
    for rid, role in sorted(roles.items()):
        own = [arn for fid, r in role_of.items() if r == rid for arn in destinations.get(fid, [])]
        for sid, action, resource in role_grants(role):
            if action.lower().startswith("sqs:") and (action.lower() != "sqs:sendmessage" or resource not in own):
                problems.append(
                    f"{rid} {sid}: {action} on {json.dumps(resource)}: a role's only SQS right is "
                    "sqs:SendMessage to its function's on-failure queue"
                )
    return problems


# IAM that puts a function in a VPC: the managed policy, or the ENI actions it grants.
VPC_MANAGED_POLICY = "AWSLambdaVPCAccessExecutionRole"
VPC_ACTIONS = ("ec2:createnetworkinterface", "ec2:deletenetworkinterface", "ec2:describenetworkinterfaces",
               "ec2:assignprivateipaddresses", "ec2:unassignprivateipaddresses")


def flight_events_problems(resources: dict) -> list[str]:
    """The flight events: FlightsLambdaFunction names its topic (FLIGHTWATCH_FLIGHT_EVENTS_TOPIC_ARN)
    and FlightsRole may sns:Publish to that topic and to nothing else; WatchLambdaFunction runs
    outside the VPC (no VpcConfig) and WatchRole may publish to no topic and has no VPC rights
    (neither the VPC access managed policy nor ENI actions): it is handed its events by its
    subscription."""
    problems = []
    flights = (resources.get("FlightsLambdaFunction") or {}).get("Properties") or {}
    watch = (resources.get("WatchLambdaFunction") or {}).get("Properties")
    topic = ((flights.get("Environment") or {}).get("Variables") or {}).get("FLIGHTWATCH_FLIGHT_EVENTS_TOPIC_ARN")
    if not topic:
        problems.append("FlightsLambdaFunction has no FLIGHTWATCH_FLIGHT_EVENTS_TOPIC_ARN")
    flights_role = ref_target(flights.get("Role"))
    published = [(sid, r) for sid, a, r in role_grants(resources.get(flights_role) or {}) if a.lower() == "sns:publish"]
    if topic and [r for _, r in published] != [topic]:
        problems.append(f"{flights_role} may sns:Publish to {[r for _, r in published]}, not to the flight events "
                        f"topic {topic} alone")
    if watch is None:
        return problems + ["no WatchLambdaFunction"]
    if "VpcConfig" in watch:
        problems.append(f"WatchLambdaFunction is in a VPC: {json.dumps(watch['VpcConfig'])[:120]}")
    watch_role_id = ref_target(watch.get("Role"))
    watch_role = resources.get(watch_role_id) or {}
    for sid, action, resource in role_grants(watch_role):
        if action.lower().startswith("sns:"):
            problems.append(f"{watch_role_id} {sid}: {action} on {json.dumps(resource)}: watch publishes nothing")
        if action.lower() in VPC_ACTIONS:
            problems.append(f"{watch_role_id} {sid}: {action}: watch is outside the VPC")
    managed = json.dumps((watch_role.get("Properties") or {}).get("ManagedPolicyArns") or [])
    if VPC_MANAGED_POLICY in managed:
        problems.append(f"{watch_role_id} has {VPC_MANAGED_POLICY}: watch is outside the VPC")
    return problems


def positive(value) -> bool:
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return False


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok: bool, what: str, why: str = ""):
        if ok:
            self.passed += 1
            print(f"ok    {what}")
        else:
            self.failed += 1
            print(f"FAIL  {what}{': ' + why if why else ''}")
        return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template", nargs="?", default=".serverless/cloudformation-template-update-stack.json")
    parser.add_argument("--openapi", default="openapi.yaml")
    args = parser.parse_args(argv)
    template_path = (ROOT / args.template) if not os.path.isabs(args.template) else Path(args.template)
    spec_path = (ROOT / args.openapi) if not os.path.isabs(args.openapi) else Path(args.openapi)
    if not template_path.is_file():
        sys.exit(f"deploy-check: no template at {template_path}: run `npx serverless package --stage ci` first")

    template = json.loads(template_path.read_text(encoding="utf-8"))
    spec = normalize(load_yaml(spec_path))
    resources = template.get("Resources", {})
    by_type: dict[str, dict[str, dict]] = {}
    for logical_id, res in resources.items():
        by_type.setdefault(res.get("Type", ""), {})[logical_id] = res
    c = Checks()

    # --- the RestApi Body is openapi.yaml ----------------------------------------------------
    apis = by_type.get("AWS::ApiGateway::RestApi", {})
    if not c.check(len(apis) == 1, "one AWS::ApiGateway::RestApi", f"found {sorted(apis)}"):
        return summary(c)
    api_id, api = next(iter(apis.items()))
    body = api.get("Properties", {}).get("Body")
    if not c.check(isinstance(body, dict), f"{api_id} has the spec inline as Body", "no Body object"):
        return summary(c)
    body = normalize(body)
    diffs = differences(body, spec)
    c.check(not diffs, f"{api_id} Body is openapi.yaml, unchanged", "; ".join(diffs))

    spec_ops = {(p, m) for p, m, _ in operations(spec)}
    body_ops = {(p, m) for p, m, _ in operations(body)}
    c.check(
        set(spec.get("paths", {})) == set(body.get("paths", {})),
        "same paths",
        f"only in template {sorted(set(body.get('paths', {})) - set(spec.get('paths', {})))}, "
        f"only in spec {sorted(set(spec.get('paths', {})) - set(body.get('paths', {})))}",
    )
    c.check(
        spec_ops == body_ops,
        f"same operations ({len(spec_ops)})",
        f"only in template {sorted(body_ops - spec_ops)}, only in spec {sorted(spec_ops - body_ops)}",
    )
    spec_schemas = (spec.get("components") or {}).get("schemas") or {}
    body_schemas = (body.get("components") or {}).get("schemas") or {}
    schema_diffs = differences(body_schemas, spec_schemas, "/components/schemas")
    c.check(not schema_diffs, f"same component schemas ({len(spec_schemas)})", "; ".join(schema_diffs))

    key_source = body.get("x-amazon-apigateway-api-key-source") or api["Properties"].get("ApiKeySourceType")
    c.check(key_source == "HEADER", "API keys are read from the x-api-key header", f"key source {key_source!r}")
    validator = body.get("x-amazon-apigateway-request-validator")
    validators = body.get("x-amazon-apigateway-request-validators") or {}
    v = validators.get(validator) or {}
    c.check(
        v.get("validateRequestBody") is True and v.get("validateRequestParameters") is True,
        "requests are validated (body and parameters) by default",
        f"default validator {validator!r} = {v}",
    )
    responses = body.get("x-amazon-apigateway-gateway-responses") or {}
    for rtype, status in (
        ("MISSING_AUTHENTICATION_TOKEN", "403"), ("INVALID_API_KEY", "403"),
        ("THROTTLED", "429"), ("QUOTA_EXCEEDED", "429"),
        ("BAD_REQUEST_BODY", "400"), ("BAD_REQUEST_PARAMETERS", "400"), ("DEFAULT_5XX", "500"),
        ("DEFAULT_4XX", None),  # keeps each error's own 4xx status: no statusCode, no "status"
    ):
        r = responses.get(rtype) or {}
        ctype = (r.get("responseParameters") or {}).get("gatewayresponse.header.Content-Type")
        templates = r.get("responseTemplates") or {}
        if status is None:
            status_ok = "statusCode" not in r and all('"status":' not in t.replace(" ", "") for t in templates.values())
        else:
            status_ok = str(r.get("statusCode")) == status and all(
                f'"status":{status}' in t.replace(" ", "") for t in templates.values())
        c.check(
            bool(templates) and status_ok and ctype == "'application/problem+json'",
            f"gateway response {rtype} is {'a ' + status if status else 'an original-status'} problem+json",
            f"statusCode {r.get('statusCode')!r}, Content-Type {ctype!r}, templates {templates}",
        )
    # That each template is valid JSON whatever the context holds: tests/deploy/gateway_responses.py.

    # --- every operation: API key, Lambda proxy integration, invoke permission ----------------
    functions = by_type.get("AWS::Lambda::Function", {})
    permissions = by_type.get("AWS::Lambda::Permission", {})
    stages = by_type.get("AWS::ApiGateway::Stage", {})
    for path, method, op in sorted(operations(spec)):
        name = f"{method.upper()} {path}"
        body_op = (body.get("paths", {}).get(path) or {}).get(method)
        if body_op is None:
            continue  # reported above
        spec_why, body_why = api_key_problem(spec, op), api_key_problem(body, body_op)
        c.check(
            spec_why is None and body_why is None,
            f"{name} requires the API key" + (" (explicitly public)" if op.get(PUBLIC_MARKER) is True else ""),
            f"in openapi.yaml: {spec_why}" if spec_why else f"in the template: {body_why}",
        )
        expected = next((fn for rx, fn in ROUTES if rx.match(path)), None)
        integ = body_op.get("x-amazon-apigateway-integration") or {}
        uri = integ.get("uri")
        uri = uri.get("Fn::Sub") if isinstance(uri, dict) else uri
        m = INTEGRATION_URI.match(uri) if isinstance(uri, str) else None
        target = m.group("function") if m else None
        c.check(
            expected is not None
            and integ.get("type") == "aws_proxy"
            and integ.get("httpMethod") == "POST"
            and target == expected
            and expected in functions,
            f"{name} is a Lambda proxy integration with {expected}",
            f"type {integ.get('type')!r}, httpMethod {integ.get('httpMethod')!r}, uri {uri!r}"
            + ("" if expected else " (no routing rule for this path in check_api.py)")
            + ("" if expected in functions else f"; {expected} is not in the template"),
        )
        sample = re.sub(r"\{[^}]+\}", "X", path)
        stage_names = [s["Properties"].get("StageName", "*") for s in stages.values()] or ["*"]
        invoke = []
        for pid, perm in permissions.items():
            pp = perm["Properties"]
            source = pp.get("SourceArn")
            source = source.get("Fn::Sub") if isinstance(source, dict) else None
            # arn:...:execute-api:${AWS::Region}:${AWS::AccountId}:${RestApi}/<stage>/<METHOD>/<path>
            pattern = source.rsplit(":", 1)[-1] if isinstance(source, str) else ""
            if (
                pp.get("Principal") == "apigateway.amazonaws.com"
                and ref_target(pp.get("FunctionName")) == expected
                and pattern.startswith(f"${{{api_id}}}/")
                and any(
                    fnmatch.fnmatchcase(f"${{{api_id}}}/{stage}/{method.upper()}{sample}", pattern)
                    for stage in stage_names
                )
            ):
                invoke.append(pid)
        c.check(bool(invoke), f"{name}: API Gateway may invoke {expected}, from this API only",
                f"no AWS::Lambda::Permission for apigateway.amazonaws.com on {expected} whose SourceArn "
                f"covers ${{{api_id}}}/<stage>/{method.upper()}{sample}")

    # --- deployment, stage, key, usage plan ---------------------------------------------------
    deployments = by_type.get("AWS::ApiGateway::Deployment", {})
    c.check(
        any(ref_target(d["Properties"].get("RestApiId")) == api_id for d in deployments.values()),
        f"a Deployment of {api_id}", f"deployments {sorted(deployments)}",
    )
    for sid, s in stages.items():
        p = s["Properties"]
        settings = p.get("MethodSettings") or []
        c.check(
            ref_target(p.get("RestApiId")) == api_id
            and ref_target(p.get("DeploymentId")) in deployments
            and p.get("TracingEnabled") is True
            and bool((p.get("AccessLogSetting") or {}).get("DestinationArn"))
            and any(m.get("MetricsEnabled") and positive(m.get("ThrottlingRateLimit")) for m in settings),
            f"stage {sid} ({p.get('StageName')}): deployed, traced, access-logged, metrics, throttled",
            json.dumps(p)[:300],
        )
    c.check(len(stages) == 1, "one stage", f"stages {sorted(stages)}")
    keys = by_type.get("AWS::ApiGateway::ApiKey", {})
    c.check(len(keys) >= 1, "an API key", "no AWS::ApiGateway::ApiKey")
    plans = by_type.get("AWS::ApiGateway::UsagePlan", {})
    c.check(len(plans) >= 1, "a usage plan", "no AWS::ApiGateway::UsagePlan")
    for pid, plan in plans.items():
        p = plan["Properties"]
        throttle, quota = p.get("Throttle") or {}, p.get("Quota") or {}
        c.check(
            positive(throttle.get("RateLimit")) and positive(throttle.get("BurstLimit")),
            f"usage plan {pid} throttles (rate {throttle.get('RateLimit')}, burst {throttle.get('BurstLimit')})",
            f"Throttle {throttle}",
        )
        c.check(
            positive(quota.get("Limit")) and quota.get("Period") in ("DAY", "WEEK", "MONTH"),
            f"usage plan {pid} has a quota ({quota.get('Limit')} a {str(quota.get('Period')).lower()})",
            f"Quota {quota}",
        )
        c.check(
            any(ref_target(s.get("ApiId")) == api_id and ref_target(s.get("Stage")) in stages
                for s in p.get("ApiStages") or []),
            f"usage plan {pid} applies to the stage of {api_id}", f"ApiStages {p.get('ApiStages')}",
        )
        c.check(
            any(ref_target(k["Properties"].get("UsagePlanId")) == pid and ref_target(k["Properties"].get("KeyId")) in keys
                for k in by_type.get("AWS::ApiGateway::UsagePlanKey", {}).values()),
            f"the API key is in usage plan {pid}", "no AWS::ApiGateway::UsagePlanKey linking them",
        )
    outputs = template.get("Outputs", {})
    c.check("ApiUrl" in outputs and "ApiKeyId" in outputs, "outputs ApiUrl and ApiKeyId", f"outputs {sorted(outputs)}")

    # --- functions and their roles ------------------------------------------------------------
    roles = by_type.get("AWS::IAM::Role", {})
    role_users: dict[str, list[str]] = {}
    for fid, fn in sorted(functions.items()):
        p = fn["Properties"]
        env = set(((p.get("Environment") or {}).get("Variables") or {}))
        want = FUNCTION_ENV.get(fid)
        if want is not None:
            c.check(want <= env, f"{fid} environment", f"missing {sorted(want - env)}")
        log_format = (p.get("LoggingConfig") or {}).get("LogFormat")
        env_format = ((p.get("Environment") or {}).get("Variables") or {}).get("AWS_LAMBDA_LOG_FORMAT")
        c.check(
            p.get("Runtime") == "provided.al2023" and p.get("Handler") == "bootstrap"
            and "JSON" in (log_format, env_format),
            f"{fid}: provided.al2023, bootstrap, JSON logs",
            f"Runtime {p.get('Runtime')}, Handler {p.get('Handler')}, LogFormat {log_format}",
        )
        role = ref_target(p.get("Role"))
        if c.check(role in roles, f"{fid} has its own role in the template", f"Role {p.get('Role')}"):
            role_users.setdefault(role, []).append(fid)
    for role, users in sorted(role_users.items()):
        c.check(len(users) == 1, f"{role} serves one function", f"shared by {users}")
    c.check("IamRoleLambdaExecution" not in resources, "no shared Serverless role (iamRoleStatements)",
            "IamRoleLambdaExecution is in the template")

    for role in sorted(role_users):
        bad = []
        for policy in roles[role]["Properties"].get("Policies") or []:
            for st in as_list((policy.get("PolicyDocument") or {}).get("Statement") or []):
                if st.get("Effect") != "Allow":
                    continue
                actions = as_list(st.get("Action") or [])
                if "NotResource" in st or "NotAction" in st or any(a == "*" or a.endswith(":*") for a in actions):
                    bad.append(f"{st.get('Sid', '?')}: NotResource/NotAction/wildcard action")
                    continue
                if "*" not in as_list(st.get("Resource")):
                    continue
                documented = (
                    role == SMS_STATEMENT["role"]
                    and st.get("Sid") == SMS_STATEMENT["sid"]
                    and actions == [SMS_STATEMENT["action"]]
                    and not st.get("Condition")
                )
                if not documented:
                    bad.append(f"{st.get('Sid', '?')}: {actions} on Resource \"*\"")
        c.check(not bad, f"{role}: no statement on Resource \"*\" but the documented SMS one", "; ".join(bad))
    sms_role = roles.get(SMS_STATEMENT["role"], {}).get("Properties", {})
    c.check(
        any(
            st.get("Sid") == SMS_STATEMENT["sid"]
            for pol in sms_role.get("Policies") or []
            for st in as_list((pol.get("PolicyDocument") or {}).get("Statement") or [])
        ),
        "the sms role may send SMS (sns:Publish on \"*\", statement SendSms)",
        "no SendSms statement in SmsRole",
    )
    sms_destinations = on_failure_destinations(resources).get("SmsLambdaFunction", [])
    c.check(
        len(sms_destinations) == 1 and str(sms_destinations[0]).startswith("arn:")
        and str(sms_destinations[0]).split(":")[2] == "sqs",
        "SmsLambdaFunction sends its failed invocations to an SQS queue (on-failure destination)",
        f"destinations {sms_destinations}",
    )
    problems = on_failure_problems(resources)
    c.check(
        not problems,
        "on-failure destinations: each function's role may send to its own, and has no other SQS right",
        "; ".join(problems),
    )
    problems = flight_events_problems(resources)
    c.check(
        not problems,
        "flight events: FlightsRole may publish to their topic only; watch is outside the VPC, "
        "publishes nothing, has no VPC rights",
        "; ".join(problems),
    )
    return summary(c)


def summary(c: Checks) -> int:
    print(f"deploy-check: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


def ensure_yaml():
    """Re-runs the running script with the venv's Python when this one lacks PyYAML."""
    try:
        import yaml  # noqa: F401, PLC0415
    except ImportError:
        if VENV_PYTHON.is_file() and Path(sys.executable).resolve() != VENV_PYTHON.resolve() \
                and not os.environ.get("FLIGHTWATCH_CHECK_API_REEXEC"):
            os.environ["FLIGHTWATCH_CHECK_API_REEXEC"] = "1"
            script = str(Path(sys.argv[0]).resolve())
            os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), script, *sys.argv[1:]])


if __name__ == "__main__":
    ensure_yaml()
    sys.exit(main())
