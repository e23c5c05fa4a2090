# The compiled core: the tape, the Var extension type, and the functions of the op table.
#
# Recording appends one row to the tape's flat columns per op and returns one small Var; the
# reverse sweep is plain C (sweep.h) over those columns, run without the GIL. Nothing here keeps a
# Python object per node except the Var the user holds.
cimport cython
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check, PyFloat_FromDouble
from cpython.long cimport PyLong_AsDouble, PyLong_Check
from cpython.object cimport PyTypeObject
from cpython.ref cimport Py_DECREF, Py_INCREF, PyObject
from cpython.type cimport PyType_Modified
from libc.stdint cimport INT32_MAX, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset

import operator
import os
import sys
import threading

import numpy as np

cdef extern from "Python.h":
    Py_ssize_t _refcnt "Py_REFCNT" (PyObject *o)

# One module in several files, included in this order (each names what it holds).
include "_core_memory.pxi"
include "_core_tape.pxi"
include "_core_threads.pxi"
include "_core_blas.pxi"
include "_core_call.pxi"
include "_core_state.pxi"
include "_core_var.pxi"
include "_core_functions.pxi"
include "_core_inspect.pxi"
include "_core_replay.pxi"
