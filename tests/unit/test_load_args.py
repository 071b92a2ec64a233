"""scripts/load.py (`make load`) refuses arguments under which it would send nothing and still exit 0."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import load  # noqa: E402


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--concurrency", "0"], "--concurrency: must be a whole number of at least 1, not '0'"),
        (["--requests", "-5"], "--requests: must be a whole number of at least 1, not '-5'"),
        (["--max-seconds", "0"], "--max-seconds: must be a number of seconds above 0, not '0'"),
        (["--max-seconds", "nan"], "--max-seconds: must be a number of seconds above 0, not 'nan'"),
    ],
    ids=["no-threads", "no-requests", "no-time", "nan"],
)
def test_arguments_that_send_nothing_exit_2_before_the_server_starts(arguments, message, capsys, monkeypatch):
    monkeypatch.setattr(load.Server, "__enter__", lambda self: pytest.fail("the server was started"))
    with pytest.raises(SystemExit) as stopped:
        load.main(["--requests", "20", *arguments])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
