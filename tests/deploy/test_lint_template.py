"""scripts/lint_template.py passes the committed template and catches the mistakes it is for."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import sam_template
from scripts.lint_template import cfn_lint_problems, main, problems

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def mutated(tmp_path):
    """``mutated(change)``: a copy of template.yaml with ``change(template)`` applied, as a file."""

    def write(change) -> Path:
        template = copy.deepcopy(sam_template.load())
        change(template)
        path = tmp_path / "template.json"  # JSON is YAML: every reader here takes it
        path.write_text(json.dumps(template, indent=1))
        return path

    return write


def retrigger_problems(path: Path) -> list[str]:
    """The lint's recursion check alone (cfn-lint's own runs are covered above and take seconds)."""
    template = sam_template.load(path)
    return sam_template.retrigger_problems(template, sam_template.expand(sam_template.load(path)))


def test_committed_template_passes():
    # The command `make lint` runs, exit status and all.
    run = subprocess.run([sys.executable, "scripts/lint_template.py", "template.yaml"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == "template.yaml: ok"


def test_direct_s3_event_cycle_is_caught_only_once_expanded(mutated):
    # GIVEN the worker also subscribed to the input bucket with a SAM S3 event, while its role
    # names that bucket: bucket -> permission -> function -> role -> bucket
    def subscribe(template):
        template["Resources"]["WorkerFunction"]["Properties"]["Events"]["Direct"] = {
            "Type": "S3",
            "Properties": {"Bucket": {"Ref": "InputBucket"}, "Events": "s3:ObjectCreated:*"},
        }

    path = mutated(subscribe)
    # WHEN linted THEN cfn-lint on the template as written sees nothing wrong...
    assert cfn_lint_problems(path.read_text(), "as written") == []
    # ...and the expanded template shows the circular dependency
    found = problems(path)
    assert any("expanded by SAM" in problem and "E3004" in problem for problem in found), found


def test_trigger_on_the_output_location_is_caught(mutated):
    # GIVEN the upload notification moved from the input bucket to the results prefix of the output bucket
    def retarget(template):
        resources = template["Resources"]
        notification = resources["InputBucket"]["Properties"].pop("NotificationConfiguration")
        notification["QueueConfigurations"][0]["Filter"]["S3Key"]["Rules"][0]["Value"] = {"Ref": "ResultPrefix"}
        resources["OutputBucket"]["Properties"]["NotificationConfiguration"] = notification

    # WHEN linted THEN the worker is named as able to retrigger itself
    found = retrigger_problems(mutated(retarget))
    assert any(
        "WorkerFunction is triggered by new objects in OutputBucket/results/*" in problem
        and "may write to OutputBucket/results/*" in problem
        for problem in found
    ), found


def test_worker_allowed_to_write_uploads_is_caught(mutated):
    # GIVEN the worker's role also lets it put objects where uploads are watched
    def widen(template):
        statements = template["Resources"]["WorkerFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        statements.append({"Effect": "Allow", "Action": "s3:Put*", "Resource": {"Fn::Sub": "${InputBucket.Arn}/*"}})

    found = retrigger_problems(mutated(widen))
    assert any("WorkerFunction" in problem and "may write to InputBucket/*" in problem for problem in found), found


def test_unreadable_write_grant_is_an_error_not_a_pass(mutated):
    # GIVEN a write grant whose bucket cannot be worked out offline
    def obscure(template):
        statements = template["Resources"]["WorkerFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        statements.append({"Effect": "Allow", "Action": "s3:PutObject", "Resource": {"Fn::ImportValue": "SomeBucketArn"}})

    found = problems(mutated(obscure))
    assert any("cannot tell which S3 location the IAM resource {'Fn::ImportValue': 'SomeBucketArn'}" in p for p in found), found


def test_help_describes_the_script_instead_of_linting_a_file_named_help(capsys):
    with pytest.raises(SystemExit) as exit_status:
        main(["--help"])
    assert exit_status.value.code == 0
    assert "cfn-lint on the template as written" in capsys.readouterr().out
