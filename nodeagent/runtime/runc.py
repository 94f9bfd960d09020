"""The container runtime driver: runc through subprocess, with coracle-shim.

Model: go-runc.  The binary is configurable; each verb's options are a frozen
value whose pure `args()` builds the command line (unit-tested without runc).
`create` runs under csrc/coracle-shim, which stays the parent of the
container's init and writes its exit status to a file, so an agent restart
loses nothing (model: containerd-shim).  Bundles come from nodeagent.runtime.oci;
rootfs mounts from nodeagent.runtime.rootfs.  `FakeRuntime` stands in for hollow
nodes and the agent's unit tests.

All methods block (run them with asyncio.to_thread) and are thread-safe: they
share no mutable state.  kill/delete are idempotent.
"""
from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import signal as _signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from apimachinery import netplan


def _default_shim() -> str:
    """csrc/coracle-shim beside the installed csrc package (built by setup.py)."""
    spec = importlib.util.find_spec("csrc")
    where = list(spec.submodule_search_locations or []) if spec else []
    base = where[0] if where else str(pathlib.Path(__file__).resolve().parent.parent / "csrc")
    return os.path.join(base, "coracle-shim")


DEFAULT_SHIM = _default_shim()
Argv = list[str]  # (a plain alias: inside the runtime classes `list` is a method)
DEFAULT_ROOT = netplan.RUNC_ROOT

# runc's messages for "nothing to do" (kill/delete of a stopped or unknown container)
_GONE = ("does not exist", "not running", "process already finished", "no such process")


class RuncError(Exception):
    """runc (or the shim) failed; `message` is runc's own error text."""

    def __init__(self, verb: str, container_id: str, message: str, code: int | None = None) -> None:
        super().__init__(f"runc {verb} {container_id}: {message}")
        self.verb, self.container_id, self.message, self.code = verb, container_id, message, code


@dataclass(frozen=True, slots=True)
class ExitStatus:
    code: int  # exit code, or 128+signal
    finished_at_ns: int  # unix time, ns


# -- options, one value per verb ------------------------------------------------

@dataclass(frozen=True, slots=True)
class GlobalOpts:
    root: str = DEFAULT_ROOT
    log: str | None = None
    log_format: str = "json"

    def args(self) -> list[str]:
        out = ["--root", self.root]
        if self.log:
            out += ["--log", self.log]
        return out + ["--log-format", self.log_format]


@dataclass(frozen=True, slots=True)
class CreateOpts:
    bundle: str
    pid_file: str
    no_pivot: bool = False
    no_new_keyring: bool = False

    def args(self, container_id: str) -> list[str]:
        out = ["create", "--bundle", self.bundle, "--pid-file", self.pid_file]
        if self.no_pivot:
            out.append("--no-pivot")
        if self.no_new_keyring:
            out.append("--no-new-keyring")
        return out + [container_id]


@dataclass(frozen=True, slots=True)
class KillOpts:
    signal: int = _signal.SIGTERM
    all: bool = False

    def args(self, container_id: str) -> list[str]:
        return ["kill"] + (["--all"] if self.all else []) + [container_id, str(int(self.signal))]


@dataclass(frozen=True, slots=True)
class DeleteOpts:
    force: bool = True

    def args(self, container_id: str) -> list[str]:
        return ["delete"] + (["--force"] if self.force else []) + [container_id]


@dataclass(frozen=True, slots=True)
class ExecOpts:
    """`runc exec`: a new process in a running container, with the container's
    env, cwd, user and capabilities (runc copies them from config.json)."""
    args: tuple[str, ...]
    tty: bool = False

    def argv(self, container_id: str) -> list[str]:
        return ["exec"] + (["--tty"] if self.tty else []) + [container_id, *self.args]


def start_args(container_id: str) -> list[str]:
    return ["start", container_id]


def state_args(container_id: str) -> list[str]:
    return ["state", container_id]


def list_args() -> list[str]:
    return ["list", "--format", "json"]


def shim_args(shim: str, exit_file: str, pid_file: str, runc_argv: list[str]) -> list[str]:
    return [shim, exit_file, pid_file, "--", *runc_argv]


def parse_runc_log(text: str) -> str:
    """runc's `--log-format json` lines -> the error message (last error, else last line)."""
    msgs: list[tuple[str, str]] = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
            msgs.append((rec.get("level", ""), rec.get("msg", "")))
        except (ValueError, AttributeError):
            if line.strip():
                msgs.append(("", line.strip()))
    errors = [m for lvl, m in msgs if lvl in ("error", "fatal")]
    if errors:
        return errors[-1]
    return msgs[-1][1] if msgs else ""


def parse_exit_file(text: str) -> ExitStatus | None:
    parts = text.split()
    if len(parts) < 2:
        return None
    try:
        return ExitStatus(int(parts[0]), int(parts[1]))
    except ValueError:
        return None


def write_bundle(bundle: str, spec: dict) -> str:
    """Write BUNDLE/config.json atomically; return its path.  Idempotent."""
    os.makedirs(bundle, exist_ok=True)
    path = os.path.join(bundle, "config.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(spec, f)
    os.replace(tmp, path)
    return path


class ContainerRuntime(Protocol):
    def create(self, id: str, bundle: str, *, log_path: str, exit_file: str, pid_file: str) -> int: ...
    def start(self, id: str) -> None: ...
    def state(self, id: str) -> dict | None: ...
    def kill(self, id: str, signal: int, all: bool = False) -> None: ...
    def delete(self, id: str, force: bool = True) -> None: ...
    def list(self) -> list[dict]: ...
    def exit_status(self, exit_file: str) -> ExitStatus | None: ...
    def exec_argv(self, id: str, args: Argv, tty: bool = False) -> Argv: ...


class Runc:
    """runc via subprocess.  Safe to call from several threads at once."""

    def __init__(self, binary: str = "runc", root: str = DEFAULT_ROOT, shim: str = DEFAULT_SHIM) -> None:
        self.binary, self.root, self.shim = binary, root, shim

    def _run(self, args: list[str]) -> subprocess.CompletedProcess:
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        argv = [self.binary, *GlobalOpts(root=self.root).args(), *args]
        return subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True)

    def _check(self, verb: str, container_id: str, args: list[str], ok_if_gone: bool = False) -> str:
        p = self._run(args)
        if p.returncode != 0:
            msg = parse_runc_log(p.stderr) or f"exit status {p.returncode}"
            if ok_if_gone and any(g in msg.lower() for g in _GONE):
                return ""
            raise RuncError(verb, container_id, msg, p.returncode)
        return p.stdout

    def create(self, id: str, bundle: str, *, log_path: str, exit_file: str, pid_file: str) -> int:
        """`runc create` under the shim; the container's stdout/stderr go to log_path.

        Returns the init PID.  Not idempotent: a second create of a live id
        fails with runc's "already exists".  runc's own messages go to
        BUNDLE/runc-create.log (json), and on failure into the RuncError.
        """
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        runc_log = os.path.join(bundle, "runc-create.log")
        for stale in (runc_log, pid_file, exit_file):
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass
        runc_argv = [self.binary, *GlobalOpts(root=self.root, log=runc_log).args(),
                     *CreateOpts(bundle=bundle, pid_file=pid_file).args(id)]
        with open(log_path, "ab") as log, open(os.devnull, "rb") as null:
            log_size = log.tell()
            p = subprocess.run(shim_args(self.shim, exit_file, pid_file, runc_argv),
                               check=False, stdin=null, stdout=log, stderr=log, close_fds=True)
            if p.returncode != 0:
                # runc 1.1 also prints its fatal error to stderr, the container's
                # log; no container ran, so take that back out of the log
                log.truncate(log_size)
        if p.returncode != 0:
            try:
                with open(runc_log) as f:
                    msg = parse_runc_log(f.read())
            except FileNotFoundError:
                msg = ""
            raise RuncError("create", id, msg or f"shim exit status {p.returncode}", p.returncode)
        with open(pid_file) as f:
            return int(f.read().strip())

    def start(self, id: str) -> None:
        self._check("start", id, start_args(id))

    def state(self, id: str) -> dict | None:
        """runc's state JSON, or None when runc does not know the container."""
        p = self._run(state_args(id))
        if p.returncode != 0:
            msg = parse_runc_log(p.stderr)
            if "does not exist" in msg:
                return None
            raise RuncError("state", id, msg or f"exit status {p.returncode}", p.returncode)
        return json.loads(p.stdout)

    def kill(self, id: str, signal: int, all: bool = False) -> None:
        """Signal the container; a stopped or unknown container is success."""
        self._check("kill", id, KillOpts(signal=signal, all=all).args(id), ok_if_gone=True)

    def delete(self, id: str, force: bool = True) -> None:
        """Remove runc's record (and with force, kill it first).  Idempotent."""
        self._check("delete", id, DeleteOpts(force=force).args(id), ok_if_gone=True)

    def list(self) -> list[dict]:
        out = self._check("list", "", list_args())
        return json.loads(out or "null") or []

    def exec_argv(self, id: str, args: Argv, tty: bool = False) -> Argv:
        """The command line that runs `args` in the container (nodeagent.server.exec spawns it).

        Its exit status is the process's.  With tty, runc makes a pty for the
        process and copies it to and from its own stdio, which must be a
        terminal (nodeagent.server.exec gives it one).
        """
        return [self.binary, *GlobalOpts(root=self.root).args(), *ExecOpts(tuple(args), tty).argv(id)]

    def exit_status(self, exit_file: str) -> ExitStatus | None:
        """What the shim recorded when the init exited; None while it runs (or never started)."""
        try:
            with open(exit_file) as f:
                return parse_exit_file(f.read())
        except FileNotFoundError:
            return None


@dataclass
class _FakeContainer:
    bundle: str
    pid: int
    exit_file: str
    status: str = "created"


class FakeRuntime:
    """In-memory runtime with Runc's contract, for unit tests and hollow nodes.

    `simulate_exit(id, code)` makes a running container stop with `code`.
    """

    def __init__(self, clock=time.time_ns) -> None:
        self._lock = threading.Lock()
        self._containers: dict[str, _FakeContainer] = {}
        self._exits: dict[str, ExitStatus] = {}
        self._next_pid = 1000
        self._clock = clock
        self.calls: list[tuple[str, str]] = []

    def create(self, id: str, bundle: str, *, log_path: str, exit_file: str, pid_file: str) -> int:
        with self._lock:
            self.calls.append(("create", id))
            if id in self._containers:
                raise RuncError("create", id, f"container with id exists: {id}", 1)
            self._next_pid += 1
            self._containers[id] = _FakeContainer(bundle, self._next_pid, exit_file)
            self._exits.pop(exit_file, None)
            return self._next_pid

    def start(self, id: str) -> None:
        with self._lock:
            self.calls.append(("start", id))
            c = self._containers.get(id)
            if c is None or c.status != "created":
                raise RuncError("start", id, "cannot start a container that is not created", 1)
            c.status = "running"

    def state(self, id: str) -> dict | None:
        with self._lock:
            c = self._containers.get(id)
            if c is None:
                return None
            return {"ociVersion": "1.0.2", "id": id, "pid": c.pid if c.status != "stopped" else 0,
                    "status": c.status, "bundle": c.bundle}

    def simulate_exit(self, id: str, code: int) -> None:
        with self._lock:
            c = self._containers[id]
            if c.status != "stopped":
                c.status = "stopped"
                self._exits[c.exit_file] = ExitStatus(code, self._clock())

    def kill(self, id: str, signal: int, all: bool = False) -> None:
        self.calls.append(("kill", id))
        c = self._containers.get(id)
        if c is not None and c.status != "stopped" and signal in (_signal.SIGKILL, _signal.SIGTERM):
            self.simulate_exit(id, 128 + int(signal))

    def delete(self, id: str, force: bool = True) -> None:
        with self._lock:
            self.calls.append(("delete", id))
            c = self._containers.get(id)
            if c is None:
                return
            if c.status == "running" and not force:
                raise RuncError("delete", id, "cannot delete container that is not stopped", 1)
            if c.status != "stopped":
                self._exits.setdefault(c.exit_file, ExitStatus(137, self._clock()))
            del self._containers[id]

    def list(self) -> list[dict]:
        with self._lock:
            ids = list(self._containers)
        return [s for s in (self.state(i) for i in ids) if s is not None]

    def exit_status(self, exit_file: str) -> ExitStatus | None:
        with self._lock:
            return self._exits.get(exit_file)

    def exec_argv(self, id: str, args: Argv, tty: bool = False) -> Argv:
        """The fake runs the command on the host, as itself (unit tests of exec)."""
        self.calls.append(("exec", id))
        if id not in self._containers or self._containers[id].status != "running":
            raise RuncError("exec", id, "cannot exec in a stopped container", 1)
        return list(args)
