"""Declares the compiled core; all metadata lives in pyproject.toml."""
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

# -O3 for GCC and Clang; MSVC spells optimisation differently and setuptools already passes /Ox.
extra = [] if sys.platform == "win32" else ["-O3"]

extensions = [
    Extension("revad._core", ["src/revad/_core.pyx"], include_dirs=["src/revad"], extra_compile_args=extra),
    Extension("revad._array", ["src/revad/_array.pyx"], include_dirs=["src/revad"], extra_compile_args=extra),
]

setup(
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
