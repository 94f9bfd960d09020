"""cffi build script for the csrc bindings (API mode, compiled at install).

`pip install .` runs it through setup.py's cffi_modules; `python csrc/build.py`
builds the extension in place for a checkout.
"""
from __future__ import annotations

import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent

ffibuilder = FFI()
ffibuilder.cdef(
    """
    #define CLONE_NEWNS ...
    #define CLONE_NEWNET ...
    #define CLONE_NEWIPC ...
    #define CLONE_NEWUTS ...
    #define CLONE_NEWPID ...
    #define MS_BIND ...
    #define MS_REC ...
    #define MS_RDONLY ...
    #define MS_PRIVATE ...
    #define MNT_DETACH ...
    int coracle_unshare(int flags);
    int coracle_setns(int fd, int nstype);
    int coracle_mount(const char *source, const char *target, const char *fstype,
                      unsigned long flags, const char *data);
    int coracle_umount2(const char *target, int flags);
    int coracle_sethostname(const char *name);
    int coracle_pin_new_namespaces(int flags, const char *net_path,
                                   const char *ipc_path, const char *uts_path,
                                   const char *hostname);
    """
)
ffibuilder.set_source(
    "csrc._native",
    '#define _GNU_SOURCE\n#include <sched.h>\n#include <sys/mount.h>\n#include "coracle_ns.h"\n',
    sources=[str(HERE / "coracle_ns.c")] if __name__ == "__main__" else ["csrc/coracle_ns.c"],
    include_dirs=[str(HERE)] if __name__ == "__main__" else ["csrc"],
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(HERE.parent), verbose=False)
