#!/usr/bin/env python3
"""Tests of the deployment checks themselves, on openapi.yaml and copies of it broken on purpose.

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
