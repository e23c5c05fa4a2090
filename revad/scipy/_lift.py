"""Arguments of revad.scipy's functions: whether any is recorded, and all of them in forms that
combine (a Var next to an ndarray becomes a 0-d Array, so that Var * ndarray stays one group)."""
import numpy as np

from revad import _array
from revad._array import Array
from revad._core import Var
from revad._primitive import _NODES


def is_node(o):
    return type(o) in _NODES


def operand(o, none=True):
    """o as an Array, a Var, or (plain data) an ndarray or a number; sequences holding Vars or
    Arrays are stacked into one Array. None stays None where `none` (an argument left out)."""
    if is_node(o) or (none and o is None):
        return o
    if isinstance(o, (list, tuple)) or (isinstance(o, np.ndarray) and o.dtype == object):
        o = _array.array(o)
        if is_node(o):
            return o
    a = np.asarray(o)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"revad.scipy: expected real numbers, got dtype {a.dtype} (complex "
                        "numbers are not supported)")
    return a


def operands(*args):
    """(any recorded, the arguments as operand() makes them, Vars as 0-d Arrays where an
    argument is an array)."""
    args = [operand(a) for a in args]
    nodes = any(is_node(a) for a in args)
    if nodes and any(type(a) is Array or (isinstance(a, np.ndarray) and a.ndim) for a in args):
        args = [_array.array(a) if type(a) is Var else a for a in args]
    return nodes, args


def values(o):
    """The values of an operand as NumPy data."""
    return np.asarray(o.value) if is_node(o) else o
