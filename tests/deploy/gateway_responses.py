#!/usr/bin/env python3
"""Renders every gateway response of the packaged REST API with hostile values and parses it.

    tests/deploy/gateway_responses.py [TEMPLATE] [--openapi FILE]

TEMPLATE defaults to .serverless/cloudformation-template-update-stack.json (written by
`npx serverless package`, relative to the repository root): the responses are read from its
RestApi Body, i.e. the API as it would be deployed. With --openapi FILE they are read from that
OpenAPI document instead (no package needed).

API Gateway fills a gateway response template by plain variable substitution (no VTL, no
$util): whatever a `$context...`, `$stageVariables...` or `$method...` variable holds is pasted
into the body as is. So every template must be valid JSON whatever those values are. Each
template is rendered once per hostile value (quotes, backslashes, a trailing backslash, newlines,
tabs, control characters, `</script>`, non-ASCII) given to every variable, except:

- `$context.error.messageString` is the message already quoted as a JSON string by API Gateway:
  it is substituted as json.dumps(hostile value) and so belongs *unquoted* in a template;
- the variables of KNOWN_FORMAT, whose values API Gateway generates in a fixed format (see there).

Each result must parse as a JSON object that is an RFC 9457 problem: `type` and `title`
non-empty strings, `detail` a string, `status` an integer equal to the response's statusCode (and absent where the
response keeps the original status, i.e. sets no statusCode, as DEFAULT_4XX does). Every response
must be served as `application/problem+json`, and DEFAULT_4XX and DEFAULT_5XX must be set so that
no gateway error falls back to API Gateway's own `{"message": ...}` body.

Prints one line a response and `gateway-responses: N passed, N failed`; exits 1 on a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_api  # noqa: E402  (load_yaml, the PyYAML re-exec)

ROOT = check_api.ROOT
REQUIRED = ("DEFAULT_4XX", "DEFAULT_5XX")
PROBLEM_JSON = "'application/problem+json'"

HOSTILE = (
    'say "hi"',
    "back\\slash \\u0000 \\n",
    "ends with a backslash\\",
    '"}],"status":"x',
    "line\nbreak\r\ncarriage\ttab",
    "control \x01\x02\x1b\x1f\x7f chars",
    "</script><script>alert(1)</script>",
    "ünïcødé ✈ 😀 \u2028\u2029 \ufeff",
    "",
    # all at once
    'a"b\\c\nd\te\x01f</script>ü😀\\',
)

# Variables whose value API Gateway generates in a fixed, JSON-string-safe format, so a template
# may put them inside a JSON string. Anything not listed here is treated as attacker-controlled.
KNOWN_FORMAT = {
    # The request id is a UUID.
    "context.requestId": lambda rtype: "c0ffee00-1234-4cde-8f00-0123456789ab",
    # The extended request id is a short base64 token (letters, digits, +, /, =).
    "context.extendedRequestId": lambda rtype: "JKJaXmPLvHcESHA=",
    # The response type is one of API Gateway's upper-case enum names, e.g. RESOURCE_NOT_FOUND.
    "context.error.responseType": lambda rtype: rtype,
}
# What DEFAULT_4XX / DEFAULT_5XX stand in for: the response types they end up serving.
DEFAULT_TYPES = {
    "DEFAULT_4XX": ("RESOURCE_NOT_FOUND", "REQUEST_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", "ACCESS_DENIED"),
    "DEFAULT_5XX": ("INTEGRATION_TIMEOUT", "INTEGRATION_FAILURE", "API_CONFIGURATION_ERROR"),
}
FAMILIES = ("context", "stageVariables", "method")
# $name.a.b or ${name.a.b}; header names may hold dashes.
VARIABLE = re.compile(r"\$(\{)?([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*)(?(1)\})")


def render(template: str, rtype: str, hostile: str) -> str:
    def value(m: re.Match) -> str:
        name = m.group(2)
        if name == "context.error.messageString":
            return json.dumps(hostile, ensure_ascii=False)
        if name in KNOWN_FORMAT:
            return KNOWN_FORMAT[name](rtype)
        return hostile

    return VARIABLE.sub(value, template)


def problem_errors(doc, status_code) -> list[str]:
    """Why doc is not an RFC 9457 problem document for a response with this statusCode."""
    if not isinstance(doc, dict):
        return [f"not a JSON object but {type(doc).__name__}"]
    errors = [
        f"{key!r} is not a non-empty string"
        for key in ("type", "title")
        if not (isinstance(doc.get(key), str) and doc[key])
    ]
    if not isinstance(doc.get("detail"), str):  # the message is API Gateway's: it may be anything
        errors.append(f"'detail' is not a string: {doc.get('detail')!r}")
    status = doc.get("status")
    if status_code is None:
        if "status" in doc:
            errors.append("has a status though the response keeps the original status code")
    elif type(status) is not int or status != int(status_code):
        errors.append(f"status {status!r} is not the integer {status_code}")
    return errors


def response_problems(rtype: str, response) -> list[str]:
    """Everything wrong with one gateway response (empty: it is always valid problem+json)."""
    if not isinstance(response, dict):
        return ["not an object"]
    out = []
    ctype = (response.get("responseParameters") or {}).get("gatewayresponse.header.Content-Type")
    if ctype != PROBLEM_JSON:
        out.append(f"Content-Type is {ctype!r}, not {PROBLEM_JSON}")
    templates = response.get("responseTemplates") or {}
    if not templates:
        out.append("no responseTemplates (API Gateway would answer its own {\"message\": ...})")
    status_code = response.get("statusCode")
    for media_type, template in sorted(templates.items()):
        if not isinstance(template, str):
            out.append(f"{media_type}: template is not a string")
            continue
        unknown = sorted({m.group(2) for m in VARIABLE.finditer(template)
                          if m.group(2).split(".")[0] not in FAMILIES})
        if unknown:
            out.append(f"{media_type}: not a gateway response variable (no VTL here): {unknown}")
        if re.search(r"(^|\s)#(set|if|foreach)\b", template):
            out.append(f"{media_type}: VTL directives are not evaluated in gateway responses")
        for rt in DEFAULT_TYPES.get(rtype, (rtype,)):
            for hostile in HOSTILE:
                body = render(template, rt, hostile)
                try:
                    doc = json.loads(body)
                except ValueError as e:
                    out.append(f"{media_type} with {hostile!r}: not JSON ({e}): {body[:160]!r}")
                    break
                errs = problem_errors(doc, status_code)
                if errs:
                    out.append(f"{media_type} with {hostile!r}: {'; '.join(errs)}")
                    break
            else:
                continue
            break  # one failing rendering per template is enough to say
    return out


def problems(responses) -> dict[str, list[str]]:
    """{response type: its problems} for every gateway response, plus the required ones missing."""
    responses = responses or {}
    out = {rtype: response_problems(rtype, r) for rtype, r in sorted(responses.items())}
    for rtype in REQUIRED:
        if rtype not in responses:
            out[rtype] = ["missing: gateway errors of this class would be API Gateway's own JSON"]
    return out


def responses_from_template(template: dict):
    apis = [r for r in (template.get("Resources") or {}).values() if r.get("Type") == "AWS::ApiGateway::RestApi"]
    if len(apis) != 1:
        sys.exit(f"gateway-responses: expected one AWS::ApiGateway::RestApi, found {len(apis)}")
    body = (apis[0].get("Properties") or {}).get("Body")
    if not isinstance(body, dict):
        sys.exit("gateway-responses: the RestApi has no inline Body (did Serverless not resolve ${file(...)}?)")
    return body.get("x-amazon-apigateway-gateway-responses")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template", nargs="?", default=".serverless/cloudformation-template-update-stack.json")
    parser.add_argument("--openapi", help="read the responses from this OpenAPI file instead of a template")
    args = parser.parse_args(argv)
    if args.openapi:
        path = Path(args.openapi) if os.path.isabs(args.openapi) else ROOT / args.openapi
        responses = (check_api.load_yaml(path) or {}).get("x-amazon-apigateway-gateway-responses")
    else:
        path = Path(args.template) if os.path.isabs(args.template) else ROOT / args.template
        if not path.is_file():
            sys.exit(f"gateway-responses: no template at {path}: run `npx serverless package --stage ci` first")
        responses = responses_from_template(json.loads(path.read_text(encoding="utf-8")))
    passed = failed = 0
    for rtype, errs in problems(responses).items():
        if errs:
            failed += 1
            print(f"FAIL  {rtype}: " + "; ".join(errs))
        else:
            passed += 1
            print(f"ok    {rtype}: valid problem+json for any context value")
    print(f"gateway-responses: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    check_api.ensure_yaml()
    sys.exit(main())
