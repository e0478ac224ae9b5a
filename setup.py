"""Builds neurontrace._core with the project's CMake build (python/CMakeLists.txt) for pip.

NT_BUILD_DIR=DIR reuses an existing CMake build folder (only the module's target is brought up to
date there); otherwise a fresh Release build is configured under build/pip/ for this interpreter.
"""
import glob
import os
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt"), encoding="utf-8") as f:
        return re.search(r"project\(neurontrace VERSION ([0-9.]+)", f.read()).group(1)


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = os.environ.get("NT_BUILD_DIR")
        if not build:
            build = os.path.join(ROOT, "build", "pip", "cmake")
            subprocess.check_call(["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                                   f"-DPython3_EXECUTABLE={sys.executable}"])
        subprocess.check_call(["cmake", "--build", build, "--target", "neurontrace_python",
                               "-j", str(os.cpu_count() or 1)])
        built = glob.glob(os.path.join(build, "python", "neurontrace", "_core*.so"))
        if len(built) != 1:
            raise RuntimeError(f"expected one built module in {build}/python/neurontrace, found {built}")
        os.makedirs(os.path.dirname(self.get_ext_fullpath(ext.name)), exist_ok=True)
        shutil.copyfile(built[0], self.get_ext_fullpath(ext.name))


setup(
    version=project_version(),
    packages=["neurontrace"],
    package_dir={"": "python"},
    package_data={"neurontrace": ["*.pyi", "py.typed"]},
    ext_modules=[Extension("neurontrace._core", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    options={"build": {"build_base": os.path.join("build", "pip")}, "egg_info": {"egg_base": os.path.join("build", "pip")}},
)
