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


def test_off_linux_it_exits_2_saying_why_before_the_server_starts(capsys, monkeypatch):
    # GIVEN a Mac, as Python reports it: no /proc to read the server's memory from
    monkeypatch.setattr(load.Server, "__enter__", lambda self: pytest.fail("the server was started"))
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(SystemExit) as stopped:
        load.main(["--requests", "20"])
    # THEN it says so at once, rather than a FileNotFoundError traceback for /proc/PID/status after warm-up
    assert stopped.value.code == 2
    assert "it reads the server's memory from /proc: Linux only" in capsys.readouterr().err
