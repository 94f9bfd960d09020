"""Compile csrc/shim.c into the `coracle-shim` executable.

setup.py calls `build()` so the shim lands at csrc/coracle-shim beside the
cffi bindings; `python csrc/build_shim.py [DEST]` does the same for a checkout.
nodeagent.runtime.runc runs the shim around every `runc create`.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = HERE / "shim.c"
NAME = "coracle-shim"


def build(dest: str = str(HERE)) -> str:
    """Compile shim.c with the system C compiler into DEST/coracle-shim; return its path.

    DEST may be a directory or the executable's full path.  The binary is
    written beside the target and renamed over it, so a running shim is never
    overwritten in place (ETXTBSY).
    """
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise RuntimeError("no C compiler found: install gcc (apt-get install gcc) or set CC")
    target = pathlib.Path(dest)
    if target.is_dir():
        target = target / NAME
    tmp = target.with_name(target.name + ".tmp")
    subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(tmp), str(SOURCE)],
                   check=True)
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)
    return str(target)


if __name__ == "__main__":
    print(build(sys.argv[1] if len(sys.argv) > 1 else str(HERE)))
