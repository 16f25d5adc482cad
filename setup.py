# Packaging is declared in setup.cfg; this file lets older tools (and
# `pip install -e .` on old pips) find it, and builds the C client library:
# every install, editable ones too, compiles guest_runtime/lib/libcuda.so.1
# from guest_runtime/libcuda/ with the system C compiler (Debian: gcc).
import importlib.util
import pathlib

import setuptools
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent


def _build_libcuda():
    spec = importlib.util.spec_from_file_location(
        "orionx_libcuda_build", HERE / "guest_runtime" / "libcuda" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build()


class BuildPyWithLibcuda(build_py):
    """build_py, then libcuda.so.1 into the source tree's guest_runtime/lib
    (what an editable install uses) and, for a wheel, into the build too."""

    def run(self):
        library = _build_libcuda()
        super().run()
        if not getattr(self, "editable_mode", False):
            target = pathlib.Path(self.build_lib) / "guest_runtime" / "lib"
            target.mkdir(parents=True, exist_ok=True)
            self.copy_file(str(library), str(target / library.name))
            link = target / "libcuda.so"
            if not link.is_symlink():
                link.symlink_to(library.name)


setuptools.setup(cmdclass={"build_py": BuildPyWithLibcuda})
