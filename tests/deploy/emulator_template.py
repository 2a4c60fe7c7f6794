#!/usr/bin/env python3
"""Writes, as JSON, the infra template with the three changes moto needs to create it at all —
and nothing else. Each works around a moto bug, not a flaw of the template; the real template is
what cfn-lint and checkov check and what AWS gets. Listed in the README under what the emulator
cannot prove.

  emulator_template.py infra/infra.yaml > infra-emulator.json   (run with the cfn-lint venv)
"""

import json
import sys

from cfnlint.decode import decode_str

template, problems = decode_str(open(sys.argv[1]).read())
if problems:
    sys.exit(f"cannot read {sys.argv[1]}: {problems}")

# moto cannot Fn::GetAtt MasterUserSecret.SecretArn of an RDS instance.
template["Outputs"]["DatabaseMasterSecretArn"]["Value"] = (
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds-master-emulated"
)
# moto's RDS fails (HTTP 500) on a DB parameter group given by reference.
template["Resources"]["Database"]["Properties"].pop("DBParameterGroupName", None)
# moto's KMS fails (HTTP 500) on CloudFormation-style tags.
for resource in template["Resources"].values():
    if resource["Type"] == "AWS::KMS::Key":
        resource["Properties"].pop("Tags", None)

json.dump(template, sys.stdout, indent=1)
