#!/usr/bin/env python3
"""Rewrites, in place, the functions' template `sls package` wrote, for moto: moto's
CloudFormation creates an AWS::ApiGateway::RestApi but ignores its `Body` (the OpenAPI import),
so the API has no methods and a Deployment of it fails. The API deployment and what hangs off it
(stage, usage plan, its key) are dropped here, for the emulator only; tests/deploy/check_api.py
checks them in the real template, and the README lists what the emulator cannot prove.

  emulator_functions.py .serverless
"""

import json
import sys
from pathlib import Path

DROP = {"AWS::ApiGateway::Deployment", "AWS::ApiGateway::Stage", "AWS::ApiGateway::UsagePlan",
        "AWS::ApiGateway::UsagePlanKey"}

path = Path(sys.argv[1]) / "cloudformation-template-update-stack.json"
template = json.loads(path.read_text())
resources = template["Resources"]
removed = {name for name, r in resources.items() if r["Type"] in DROP}


def mentions(value, names):
    """Whether a Ref, GetAtt, DependsOn or ${Sub} in `value` names one of `names`."""
    text = json.dumps(value)
    return any(f'"{n}"' in text or "${" + n + "}" in text or "${" + n + "." in text for n in names)


changed = True
while changed:
    changed = False
    for name in list(resources):
        if name not in removed and mentions(resources[name], removed):
            removed.add(name)
            changed = True
for name in removed:
    resources.pop(name, None)
template["Outputs"] = {k: v for k, v in template.get("Outputs", {}).items() if not mentions(v, removed)}
path.write_text(json.dumps(template, indent=1))
print(f"emulator template: dropped {', '.join(sorted(removed))}", file=sys.stderr)
