"""Declares the compiled core; all metadata lives in pyproject.toml."""
import glob
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# Optimisation flags by the compiler actually in use, not by platform: GCC and Clang (Linux,
# macOS, MinGW) take -O3; MSVC rejects -O3 and spells it /O2 (setuptools passes /O2 /GL already;
# we say it here so the choice is visible). An unknown compiler gets its own defaults.
# -fno-trapping-math (clang's default; nothing in revad reads the FP exception flags) lets GCC
# turn a loop's conditions into blends and vectorise it: vmath.h's tanh, 6.6-8.3 ns an element
# against 16-18 with the branches.
# -g0: no debug information (the wheels ship stripped anyway), which takes a quarter of the build;
# REVAD_DEBUG_BUILD=1 keeps Python's -g, for a debugger or a crash's backtrace.
GCC_LIKE = ["-O3", "-fno-trapping-math"] + ([] if os.environ.get("REVAD_DEBUG_BUILD") else ["-g0"])
OPT_FLAGS = {"unix": GCC_LIKE, "mingw32": GCC_LIKE, "cygwin": GCC_LIKE, "msvc": ["/O2"]}


class BuildExt(build_ext):
    def build_extensions(self):
        flags = OPT_FLAGS.get(self.compiler.compiler_type, [])
        for ext in self.extensions:
            ext.extra_compile_args = [*ext.extra_compile_args, *flags]
        # The two modules compile side by side unless the caller chose with -j.
        if not self.parallel:
            self.parallel = True
        super().build_extensions()


# The C headers (ops_table.h's rows above all) are compiled into both modules; naming them
# makes an in-place build recompile after a change to a header alone.
HEADERS = sorted(glob.glob("src/revad/*.h"))
# revad._array makes ndarrays with NumPy's C API (a functional call's gradient buffers), so it
# compiles against NumPy's headers. pyproject.toml builds with NumPy 2.x, whose headers give a
# module that runs on every NumPy from the one named here on: 1.23, the oldest the package
# admits at run time (its dependency). The deprecated (pre-1.7) API stays out.
NUMPY_API = [("NPY_NO_DEPRECATED_API", "NPY_1_23_API_VERSION"),
             ("NPY_TARGET_VERSION", "NPY_1_23_API_VERSION")]

extensions = [
    Extension("revad._core", ["src/revad/_core.pyx"], include_dirs=["src/revad"], depends=HEADERS),
    Extension("revad._array", ["src/revad/_array.pyx"],
              include_dirs=["src/revad", numpy.get_include()], define_macros=NUMPY_API,
              depends=HEADERS),
]

setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            # One __add__(a, b) slot function for both operand orders, as the C API has it:
            # saves a second dispatch per arithmetic op.
            "c_api_binop_methods": True,
            "embedsignature": True,
        },
    ),
)
