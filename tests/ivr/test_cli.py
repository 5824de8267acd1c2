"""``cosmo flows validate | simulate | schema``."""

from __future__ import annotations

import argparse
import io
import json
import shutil
from pathlib import Path

import pytest
import yaml

from cosmo.ivr import cli
from cosmo.ivr.settings import BusinessHours, IvrSettings
from cosmo.ivr.steps import STEP_KINDS
from tests.ivr.helpers import REPO


def flows(argv: list[str], settings: IvrSettings | None = None) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="cosmo")
    cli.add_parser(parser.add_subparsers(dest="command"))
    out = io.StringIO()
    status = cli.run(parser.parse_args(["flows", *argv]), settings, out=out)
    return status, out.getvalue()


@pytest.fixture(autouse=True)
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # media/ and config/customers.yaml as `cosmo` sees them in a checkout


def test_validate_the_shipped_flows() -> None:
    assert flows(["validate"]) == (0, "2 flow files checked: 0 errors, 0 warnings\n")


def test_validate_reports_every_problem(tmp_path: Path) -> None:
    shutil.copy(REPO / "ivr_flows" / "main.yaml", tmp_path / "main.yaml")
    (tmp_path / "bad.yaml").write_text(
        "entry: a\nnodes:\n  a:\n    play: {prompt: welcom, next: b}\n  b:\n    call: {flow: mian}\n  c:\n    return:\n")
    status, output = flows(["validate", str(tmp_path)])
    assert status == 1
    assert output.splitlines() == [
        f"{tmp_path}/bad.yaml:4:20: error: prompt 'welcom' not found for language 'en'",
        f"{tmp_path}/bad.yaml:6:18: error: unknown flow 'mian' (did you mean 'main'?)",
        f"{tmp_path}/bad.yaml:7:3: warning: node 'c' is never reached from entry 'a'",
        "2 flow files checked: 2 errors, 1 warning",
    ]
    status, output = flows(["validate", "--no-prompts", str(tmp_path / "bad.yaml")])
    assert status == 1 and "welcom" not in output


def test_warnings_alone_pass(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text("entry: a\nnodes:\n  a:\n    hangup:\n  b:\n    hangup:\n")
    assert flows(["validate", str(tmp_path / "w.yaml")]) == (0, (
        f"{tmp_path}/w.yaml:5:3: warning: node 'b' is never reached from entry 'a'\n"
        "1 flow file checked: 0 errors, 1 warning\n"))


def test_validate_uses_the_settings_flows_dir_and_calendars(tmp_path: Path) -> None:
    (tmp_path / "h.yaml").write_text("entry: a\nnodes:\n  a:\n    hours: {calendar: night, open: b, closed: b}\n"
                                     "  b:\n    hangup:\n")
    settings = IvrSettings(flows_dir=tmp_path)
    assert flows(["validate"], settings)[0] == 1
    settings = IvrSettings(flows_dir=tmp_path, calendars={"night": BusinessHours()})
    assert flows(["validate"], settings) == (0, "1 flow file checked: 0 errors, 0 warnings\n")
    assert flows(["validate", "--flows-dir", str(tmp_path / "none")])[1] == f"no flow files in {tmp_path}/none\n"


def test_simulate_the_demo() -> None:
    status, output = flows(["simulate", "main", "--caller", "+15550100123", "--input", "2", "--input", "123456",
                            "--time", "2026-11-23T03:00"])
    assert status == 0
    lines = output.splitlines()
    assert lines[:16] == [
        "call sim-1 from +15550100123 to +15550100 at 2026-11-23T03:00:00+00:00: flow main",
        "-> main.welcome (lookup)",
        "   customer by phone '+15550100123': Ada Byron (id 1, tier gold)",
        "-> main.greet (play)",
        "   play: welcome (caller keys 2 during it: barge-in)",
        "-> main.check-hours (hours)",
        "-> main.main-menu (menu)",
        ("   listen for 1 key or speech ['account balance', 'billing', 'technical support', 'support', 'operator', "
        "'agent', 'representative']: main-menu (skipped: keys typed ahead)"),
        "   caller keys: 2",
        "-> main.account-number (collect)",
        "   listen for up to 6 keys: enter-account-number",
        "   caller keys: 123456",
        "-> main.find-account (lookup)",
        "   customer by account '123456': Ada Byron (id 1, tier gold)",
        "-> main.support (queue)",
        "   play: please-hold",
    ]
    assert lines[16] == "   queue support: priority 5, skills {support: 1}, announcements on"
    assert lines[17].startswith('   data: {"customer": {"account": "123456", ')
    assert lines[18:20] == ["   queue answers: answered",
                            "end: queued (support: answered) at main.support after 7 steps"]
    assert lines[20].startswith("call data: ") and '"ivr": {"account": "123456", "menu": "support"}' in lines[20]


def test_simulate_speech_timeouts_and_a_closed_calendar(tmp_path: Path) -> None:
    settings = IvrSettings(calendars={"business": BusinessHours(timezone="America/New_York",
                                                                hours={"mon-fri": ["09:00-18:00"]})})
    status, output = flows(["simulate", "main", "--time", "2026-11-23T03:00"], settings)
    assert status == 0
    assert "-> main.closed-voicemail (voicemail)" in output
    assert "   voicemail into support (up to 120 s) after: leave-message, beep" in output
    assert "end: voicemail (support: recorded) at main.closed-voicemail after 5 steps" in output

    status, output = flows(["simulate", "main", "--caller", "+15559999999", "--say", "Billing", "--timeout",
                            "--hangup"])
    assert 'caller says: "billing" (confidence 1.00)' in output
    assert "   customer by phone '+15559999999': not found" in output
    assert "end: queued (billing: answered) at main.billing after 5 steps" in output
    assert output.endswith("unused input: 2 answers\n")

    status, output = flows(["simulate", "main", "--input", "7", "--timeout", "--queue-answer", "abandoned"])
    assert "   caller: (nothing: timeout)" in output
    assert "end: queued (support: abandoned) at main.operator after 5 steps" in output


def test_simulate_a_file_and_failures(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("entry: a\nnodes:\n  a:\n    goto: b\n")
    status, output = flows(["simulate", str(bad)])
    assert (status, output) == (1, f"{bad}:4:11: error: unknown node 'b'\n")
    assert flows(["simulate", "nothing"]) == (1, "no flow 'nothing' in ivr_flows\n")
    good = tmp_path / "good.yaml"
    good.write_text("entry: a\nnodes:\n  a:\n    lookup: {customer: {by: account, value: '1'}, next: b}\n"
                    "  b:\n    hangup:\n")
    status, output = flows(["simulate", str(good), "--customers", str(tmp_path / "none.yaml")])
    assert status == 1 and output.startswith(f"{tmp_path}/none.yaml: cannot read customers: ")
    status, output = flows(["simulate", str(good), "--customers", str(REPO / "config" / "customers.yaml")])
    assert status == 0 and "   customer by account '1': not found" in output


def test_bad_arguments() -> None:
    with pytest.raises(SystemExit) as caught:
        flows(["simulate", "main", "--input", "12a"])
    assert caught.value.code == 2
    with pytest.raises(SystemExit):
        flows(["simulate", "main", "--time", "yesterday"])
    assert flows([]) == (2, "")


def test_schema() -> None:
    status, output = flows(["schema"])
    assert status == 0
    schema = json.loads(output)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["entry", "nodes"]
    node = schema["$defs"]["Node"]
    assert list(node["properties"]) == list(STEP_KINDS)
    assert (node["minProperties"], node["maxProperties"], node["additionalProperties"]) == (1, 1, False)
    prompt = schema["$defs"]["PlayStep"]["properties"]["prompt"]
    assert {"type": "string"} in prompt["anyOf"]


@pytest.mark.parametrize("name", ["main", "survey"])
def test_shipped_flows_match_the_schema(name: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(flows(["schema"])[1])
    jsonschema.validate(yaml.safe_load((REPO / "ivr_flows" / f"{name}.yaml").read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"entry": "a", "nodes": {"a": {"play": {"prompt": "x"}, "goto": "a"}}}, schema)
