"""Only here for the C in csrc/: the cffi bindings are compiled when the
package is installed, and so is the container shim executable."""
import sys

from setuptools import setup

sys.path.insert(0, "csrc")
import build_shim  # noqa: E402

build_shim.build("csrc")
setup(cffi_modules=["csrc/build.py:ffibuilder"])
