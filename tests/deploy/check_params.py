#!/usr/bin/env python3
"""Checks that the packaged template follows the stage's params.json (tests/deploy/package.sh
runs it on each template it packages):

    tests/deploy/check_params.py TEMPLATE PARAMS_JSON

- reserved concurrency: with "ReservedConcurrency": false (or absent) no function has
  ReservedConcurrentExecutions (Lambda keeps 100 of the account's concurrency unreserved, so any
  reservation fails on an account whose quota is below 100 + the reservations); with true, the
  five functions have the reservations serverless.yml documents;
- the sms function's failed invocations go to the dead-letter queue (DeadLetterQueueArn), and it
  claims recipients in its own bucket (SmsClaimsBucketName), nowhere else;
- the sms function reports to the delivery-reports topic (DeliveryReportsTopicArn), the alerts
  function is subscribed to it, and its failed asynchronous invocations (reports it could not
  record) go to the dead-letter queue too;
- the alerts function is subscribed to both SMS delivery status log groups, with the permission
  for CloudWatch Logs to invoke it;
- the flight events (FlightEventsTopicArn): the flights function publishes them (its role may
  publish to the topic; its environment names it with "Watching": true, and is empty with
  "Watching": false or absent: registrations are announced only when watching is on), the watch
  function, and only it, is subscribed to them, reads its own settings file
  (<stage>/watch.properties) and sends its failed invocations to the dead-letter queue.

Prints one line a check and `check-params: N passed, N failed`; exits 1 on a failure.
"""

import json
import sys

# serverless.yml's custom.concurrency.true, without --param overrides.
RESERVED = {
    "FlightsLambdaFunction": 10,
    "AlertsLambdaFunction": 10,
    "SmsLambdaFunction": 5,
    "WatchLambdaFunction": 2,
    "MigrateLambdaFunction": 1,
}


def main(template_path: str, params_path: str) -> int:
    resources = json.load(open(template_path, encoding="utf-8"))["Resources"]
    params = json.load(open(params_path, encoding="utf-8"))
    passed = failed = 0

    def check(ok: bool, what: str, why: str = "") -> None:
        nonlocal passed, failed
        passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)
        print(f"{'ok  ' if ok else 'FAIL'}  {what}{'' if ok else ': ' + why}")

    functions = {k: r for k, r in resources.items() if r.get("Type") == "AWS::Lambda::Function"}
    reserved = {k: r["Properties"]["ReservedConcurrentExecutions"]
                for k, r in functions.items() if "ReservedConcurrentExecutions" in r["Properties"]}
    reserve = params.get("ReservedConcurrency", False)
    check(reserve in (True, False), "ReservedConcurrency is a JSON boolean", repr(reserve))
    if reserve is True:
        check(reserved == RESERVED, f"ReservedConcurrency true: the functions reserve {RESERVED}", repr(reserved))
    else:
        check(set(functions) >= set(RESERVED) and reserved == {},
              "ReservedConcurrency false: no function has ReservedConcurrentExecutions",
              f"functions {sorted(functions)}, reserved {reserved}")

    def on_failure(function):
        return [
            ((r["Properties"].get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            for r in resources.values()
            if r.get("Type") == "AWS::Lambda::EventInvokeConfig"
            and r["Properties"].get("FunctionName") == {"Ref": function}
        ]

    for function in ("SmsLambdaFunction", "AlertsLambdaFunction", "WatchLambdaFunction"):
        destinations = on_failure(function)
        check(destinations == [params["DeadLetterQueueArn"]],
              f"{function}'s on-failure destination is the dead-letter queue (DeadLetterQueueArn)",
              f"{destinations} != [{params['DeadLetterQueueArn']}]")
    env = ((functions.get("SmsLambdaFunction", {}).get("Properties", {}).get("Environment") or {})
           .get("Variables") or {})
    check(env.get("FLIGHTWATCH_SMS_CLAIMS_BUCKET") == params["SmsClaimsBucketName"],
          "the sms function claims recipients in its own bucket",
          repr(env.get("FLIGHTWATCH_SMS_CLAIMS_BUCKET")))
    sms_role = json.dumps(resources.get("SmsRole", {}))
    check(params["SmsClaimsBucketName"] in sms_role and "s3:PutObject" in sms_role
          and params["ConfigBucketName"] not in sms_role,
          "the sms role may write claims to its bucket, and nothing of the config bucket",
          "see SmsRole")

    check(env.get("FLIGHTWATCH_DELIVERY_REPORTS_TOPIC_ARN") == params["DeliveryReportsTopicArn"],
          "the sms function reports to the delivery-reports topic",
          repr(env.get("FLIGHTWATCH_DELIVERY_REPORTS_TOPIC_ARN")))
    subscribed = [
        r["Properties"].get("Endpoint")
        for r in resources.values()
        if r.get("Type") == "AWS::SNS::Subscription"
        and r["Properties"].get("TopicArn") == params["DeliveryReportsTopicArn"]
    ]
    check(subscribed == [{"Fn::GetAtt": ["AlertsLambdaFunction", "Arn"]}],
          "the alerts function, and only it, is subscribed to the delivery-reports topic",
          repr(subscribed))

    filters = sorted(
        r["Properties"].get("LogGroupName", {}).get("Fn::Sub", "")
        for r in resources.values()
        if r.get("Type") == "AWS::Logs::SubscriptionFilter"
        and r["Properties"].get("DestinationArn") == {"Fn::GetAtt": ["AlertsLambdaFunction", "Arn"]}
    )
    want = ["sns/${AWS::Region}/${AWS::AccountId}/DirectPublishToPhoneNumber",
            "sns/${AWS::Region}/${AWS::AccountId}/DirectPublishToPhoneNumber/Failure"]
    check(filters == want, "the alerts function reads both SMS delivery status log groups", repr(filters))
    permitted = [
        r["Properties"].get("SourceArn")
        for r in resources.values()
        if r.get("Type") == "AWS::Lambda::Permission"
        and r["Properties"].get("Principal") == "logs.amazonaws.com"
    ]
    check(len(permitted) == 1 and "DirectPublishToPhoneNumber" in json.dumps(permitted),
          "CloudWatch Logs may invoke the alerts function for those log groups only", repr(permitted))

    def env_of(function):
        return ((functions.get(function, {}).get("Properties", {}).get("Environment") or {})
                .get("Variables") or {})

    events = params["FlightEventsTopicArn"]
    watching = params.get("Watching", False)
    check(watching in (True, False), "Watching is a JSON boolean", repr(watching))
    announced = env_of("FlightsLambdaFunction").get("FLIGHTWATCH_FLIGHT_EVENTS_TOPIC_ARN")
    if watching is True:
        check(announced == events,
              "Watching true: the flights function announces registrations on FlightEventsTopicArn",
              repr(announced))
    else:
        check(announced == "",
              "Watching false: the flights function announces nothing (FLIGHTWATCH_FLIGHT_EVENTS_TOPIC_ARN empty)",
              repr(announced))
    check(events in json.dumps(resources.get("FlightsRole", {})),
          "the flights role names the flight events topic", "see FlightsRole")
    subscribed = [
        r["Properties"].get("Endpoint")
        for r in resources.values()
        if r.get("Type") == "AWS::SNS::Subscription" and r["Properties"].get("TopicArn") == events
    ]
    check(subscribed == [{"Fn::GetAtt": ["WatchLambdaFunction", "Arn"]}],
          "the watch function, and only it, is subscribed to the flight events topic", repr(subscribed))
    permitted = [
        r["Properties"].get("SourceArn")
        for r in resources.values()
        if r.get("Type") == "AWS::Lambda::Permission" and r["Properties"].get("Principal") == "sns.amazonaws.com"
        and r["Properties"].get("FunctionName") == {"Fn::GetAtt": ["WatchLambdaFunction", "Arn"]}
    ]
    check(permitted == [events], "SNS may invoke the watch function for the flight events topic only",
          repr(permitted))
    watch_env = env_of("WatchLambdaFunction")
    key = f"{params['Stage']}/watch.properties"
    watch_role = json.dumps(resources.get("WatchRole", {}))
    check(watch_env.get("FLIGHTWATCH_CONFIG_BUCKET") == params["ConfigBucketName"]
          and watch_env.get("FLIGHTWATCH_CONFIG_KEY") == key
          and f"{params['ConfigBucketName']}/{key}" in watch_role
          and watch_role.count(params["ConfigBucketName"]) == 1,
          f"the watch function reads its own settings file, {key}, and nothing else of the config bucket",
          f"env {watch_env}, see WatchRole")
    feed = watch_env.get("FLIGHTWATCH_FEED_URL")
    check(isinstance(feed, dict) and "${RestApi}" in str(feed.get("Fn::Sub"))
          and str(feed.get("Fn::Sub")).endswith(f"/{params['Stage']}/feeds/flightaware"),
          "the watch function gives AeroAPI this stage's POST /feeds/flightaware (Fn::Sub of ${RestApi})",
          repr(feed))

    print(f"check-params: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
