#!/usr/bin/env python3
"""Writes, as JSON, the infra template with the changes moto needs to create it at all, or to
create what the rehearsal uses — and nothing else. Each works around a moto gap, not a flaw of
the template; the real template is what cfn-lint and checkov check and what AWS gets. Listed in
the README under what the emulator cannot prove.

moto also skips, with a warning and no error, the resource types its CloudFormation does not
know: here the topic, queue and bucket policies, the separate security-group egress rules and
the dead-letter queue's CloudWatch alarm. Those are left in (nothing to work around), and so are
the Rules (moto does not evaluate them).

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

# moto's CloudFormation has no AWS::SNS::Subscription, but it does subscribe the endpoints listed in
# a topic's own Subscription property: the dead-letter queue's subscription moves there. That
# property cannot say RawMessageDelivery, so moto delivers SNS's JSON envelope (the message in its
# "Message" member) where AWS delivers the raw message; a rehearsal that wants the raw message sets
# the attribute with sns set-subscription-attributes after the deploy.
resources = template["Resources"]
for logical_id, resource in list(resources.items()):
    if resource["Type"] != "AWS::SNS::Subscription":
        continue
    props = resource["Properties"]
    topic = props["TopicArn"]["Ref"]
    resources[topic]["Properties"].setdefault("Subscription", []).append(
        {"Endpoint": props["Endpoint"], "Protocol": props["Protocol"]}
    )
    del resources[logical_id]
# moto's CloudFormation has no AWS::CloudWatch::Alarm: the alarm is not created, and a Ref to it
# outputs nothing. The output gets the name the alarm would have, so the outputs are complete.
for output in template["Outputs"].values():
    ref = output["Value"].get("Ref") if isinstance(output["Value"], dict) else None
    if ref in resources and resources[ref]["Type"] == "AWS::CloudWatch::Alarm":
        output["Value"] = resources[ref]["Properties"]["AlarmName"]

json.dump(template, sys.stdout, indent=1)
