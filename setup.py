"""The C in csrc/ (cffi bindings and the container shim) is compiled when the
package is installed; the package list lives here too."""
import sys

from setuptools import find_packages, setup

sys.path.insert(0, "csrc")
import build_shim  # noqa: E402

build_shim.build("csrc")
# `coracle` (the command line and the one-machine clusters) lives in scripts/coracle
# beside the shell scripts that call it.
PACKAGES = ["apimachinery*", "master*", "nodeagent*", "cni*", "cgroups*", "csrc*"]
setup(cffi_modules=["csrc/build.py:ffibuilder"],
      packages=find_packages(include=PACKAGES) + find_packages("scripts", include=["coracle*"]),
      package_dir={"coracle": "scripts/coracle"})
