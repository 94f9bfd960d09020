"""`coracle debug enter`: run a command inside a pod's (or a container's)
namespaces with our own setns binding (csrc), as nsenter(1) does.

Which namespace files to join, in which order, is decided purely in
nodeagent.debug.view.enter_targets; this module only carries it out.
Kernel facts: setns(2) acts on the calling thread, and joining a mount
namespace is refused (EINVAL) for a multithreaded process; setns into a PID
namespace moves only the caller's future children.  The `coracle debug` CLI
is a fresh single-threaded process, and the setns calls happen in a forked
child (single-threaded by construction), so no thread of the caller ever
changes namespace.
"""
from __future__ import annotations

import os
import signal
import sys

import csrc


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _wait(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return _exit_code(status)
        except InterruptedError:
            continue


def _child(targets: list[tuple[str, str]], argv: list[str]) -> int:
    """In the forked child: open every ns file first (mnt changes what paths
    mean), setns each in order, fork once more if a pid ns was joined."""
    fds = []
    try:
        for kind, path in targets:
            fds.append((kind, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
    except OSError as e:
        print(f"coracle debug enter: open {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    for kind, fd in fds:
        try:
            csrc.setns(fd, 0)
        except OSError as e:
            print(f"coracle debug enter: setns {kind} namespace: {e.strerror}", file=sys.stderr)
            return 1
        os.close(fd)
    if any(k == "pid" for k, _ in targets):
        pid = os.fork()
        if pid:
            return _wait(pid)
    try:
        os.chdir("/")
        os.execvp(argv[0], argv)
    except OSError as e:
        print(f"coracle debug enter: {argv[0]}: {e.strerror}", file=sys.stderr)
    return 127


def enter(targets: list[tuple[str, str]], argv: list[str]) -> int:
    """Run argv in the namespaces `targets` ((kind, ns file) in setns order) and
    return its exit code (128+signal if killed).  Blocks until it exits."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = _child(targets, argv)
        except BaseException as e:  # noqa: BLE001 - the child must never return into the caller
            print(f"coracle debug enter: {e}", file=sys.stderr)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    # The terminal's ^C reaches the child (same process group); the parent waits it out.
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return _wait(pid)
    finally:
        signal.signal(signal.SIGINT, old)
