"""nodeagent.runtime.runc: verb options, parsers, Runc against a stub binary, FakeRuntime."""
from __future__ import annotations

import json
import os
import signal
import stat
import time

import pytest

from csrc.build_shim import build
from nodeagent.runtime.runc import (
    CreateOpts,
    DeleteOpts,
    ExitStatus,
    FakeRuntime,
    GlobalOpts,
    KillOpts,
    Runc,
    RuncError,
    list_args,
    parse_exit_file,
    parse_runc_log,
    shim_args,
    start_args,
    state_args,
    write_bundle,
)


def test_global_opts() -> None:
    assert GlobalOpts(root="/r").args() == ["--root", "/r", "--log-format", "json"]
    assert GlobalOpts(root="/r", log="/l").args() == ["--root", "/r", "--log", "/l", "--log-format", "json"]


def test_verb_args() -> None:
    assert CreateOpts(bundle="/b", pid_file="/p").args("c1") == [
        "create", "--bundle", "/b", "--pid-file", "/p", "c1"]
    assert CreateOpts(bundle="/b", pid_file="/p", no_pivot=True).args("c1")[-2:] == ["--no-pivot", "c1"]
    assert KillOpts().args("c1") == ["kill", "c1", "15"]
    assert KillOpts(signal=signal.SIGKILL, all=True).args("c1") == ["kill", "--all", "c1", "9"]
    assert DeleteOpts().args("c1") == ["delete", "--force", "c1"]
    assert DeleteOpts(force=False).args("c1") == ["delete", "c1"]
    assert start_args("c1") == ["start", "c1"] and state_args("c1") == ["state", "c1"]
    assert list_args() == ["list", "--format", "json"]
    assert shim_args("/s", "/e", "/p", ["runc", "create"]) == ["/s", "/e", "/p", "--", "runc", "create"]


def test_parse_runc_log() -> None:
    text = "\n".join([
        json.dumps({"level": "warning", "msg": "meh"}),
        json.dumps({"level": "error", "msg": "runc run failed: no such file"}),
        json.dumps({"level": "info", "msg": "after"}),
    ])
    assert parse_runc_log(text) == "runc run failed: no such file"
    assert parse_runc_log('{"level":"info","msg":"x"}\n') == "x"
    assert parse_runc_log("plain text error\n") == "plain text error"
    assert parse_runc_log("") == ""


def test_parse_exit_file() -> None:
    assert parse_exit_file("3\n1700000000000000000\n") == ExitStatus(3, 1700000000000000000)
    assert parse_exit_file("") is None and parse_exit_file("x y") is None


STUB = """#!/bin/sh
# stub runc: records argv; behaviour picked by the verb after the global options
echo "$@" >> "$STUB_LOG"
while [ $# -gt 0 ]; do
  case "$1" in
    --root|--log|--log-format) [ "$1" = --log ] && LOG="$2"; shift 2;;
    *) break;;
  esac
done
verb="$1"; shift
case "$verb" in
  create)
    while [ $# -gt 1 ]; do [ "$1" = --pid-file ] && PIDF="$2"; shift; done
    if [ "$1" = bad ]; then echo '{"level":"error","msg":"bad bundle: config.json missing"}' > "$LOG"; exit 1; fi
    (sleep 0.2; exit 4) & echo $! > "$PIDF"; exit 0;;
  state)
    if [ "$1" = gone ]; then echo '{"level":"error","msg":"container does not exist"}' >&2; exit 1; fi
    echo "{\\"id\\": \\"$1\\", \\"status\\": \\"running\\", \\"pid\\": 42}";;
  kill|delete)
    if [ "$1" = gone ]; then echo '{"level":"error","msg":"container does not exist"}' >&2; exit 1; fi
    if [ "$1" = broken ]; then echo '{"level":"error","msg":"permission denied"}' >&2; exit 1; fi;;
  list) echo null;;
esac
"""


@pytest.fixture
def stub(tmp_path, monkeypatch) -> Runc:
    path = tmp_path / "runc"
    path.write_text(STUB)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("STUB_LOG", str(tmp_path / "argv"))
    return Runc(binary=str(path), root=str(tmp_path / "root"), shim=build(str(tmp_path)))


def test_runc_create_through_shim_records_exit(stub: Runc, tmp_path) -> None:
    b = tmp_path / "b"
    write_bundle(str(b), {"ociVersion": "1.0.2"})
    assert json.loads((b / "config.json").read_text()) == {"ociVersion": "1.0.2"}
    ef, pf = str(tmp_path / "exit"), str(tmp_path / "pid")
    pid = stub.create("c1", str(b), log_path=str(tmp_path / "log"), exit_file=ef, pid_file=pf)
    assert pid == int((tmp_path / "pid").read_text())
    assert stub.exit_status(ef) is None
    deadline = time.time() + 5
    while stub.exit_status(ef) is None and time.time() < deadline:
        time.sleep(0.02)
    st = stub.exit_status(ef)
    assert st is not None and st.code == 4 and abs(st.finished_at_ns - time.time_ns()) < 10**10
    argv = (tmp_path / "argv").read_text().split()
    assert argv[:2] == ["--root", str(tmp_path / "root")] and "--pid-file" in argv and argv[-1] == "c1"


def test_runc_create_failure_carries_runc_message(stub: Runc, tmp_path) -> None:
    with pytest.raises(RuncError) as e:
        stub.create("bad", str(tmp_path), log_path=str(tmp_path / "log"),
                    exit_file=str(tmp_path / "e"), pid_file=str(tmp_path / "p"))
    assert e.value.message == "bad bundle: config.json missing" and e.value.code == 1
    assert not os.path.exists(tmp_path / "e")


def test_runc_state_kill_delete_list(stub: Runc) -> None:
    assert stub.state("c1") == {"id": "c1", "status": "running", "pid": 42}
    assert stub.state("gone") is None
    stub.kill("gone", signal.SIGKILL)
    stub.delete("gone")
    stub.delete("c1")
    with pytest.raises(RuncError, match="permission denied"):
        stub.kill("broken", signal.SIGTERM)
    assert stub.list() == []


def test_fake_runtime_lifecycle() -> None:
    rt = FakeRuntime(clock=lambda: 123)
    pid = rt.create("c1", "/b", log_path="/l", exit_file="/e", pid_file="/p")
    assert rt.state("c1")["status"] == "created" and rt.state("c1")["pid"] == pid
    with pytest.raises(RuncError):
        rt.create("c1", "/b", log_path="/l", exit_file="/e", pid_file="/p")
    rt.start("c1")
    assert rt.state("c1")["status"] == "running" and rt.exit_status("/e") is None
    rt.simulate_exit("c1", 3)
    assert rt.exit_status("/e") == ExitStatus(3, 123) and rt.state("c1")["status"] == "stopped"
    rt.kill("c1", signal.SIGKILL)  # already stopped: no error, status unchanged
    assert rt.exit_status("/e").code == 3
    rt.delete("c1")
    rt.delete("c1")
    assert rt.state("c1") is None and rt.list() == []


def test_fake_runtime_kill_and_delete_running() -> None:
    rt = FakeRuntime()
    rt.create("c1", "/b", log_path="/l", exit_file="/e1", pid_file="/p")
    rt.start("c1")
    with pytest.raises(RuncError):
        rt.delete("c1", force=False)
    rt.kill("c1", signal.SIGKILL)
    assert rt.exit_status("/e1").code == 137
    rt.create("c2", "/b", log_path="/l", exit_file="/e2", pid_file="/p")
    assert [(s["id"], s["status"]) for s in rt.list()] == [("c1", "stopped"), ("c2", "created")]
    with pytest.raises(RuncError):
        rt.start("nope")
