"""SciPy's functions for revad Arrays, in autograd's layout (``revad.scipy.linalg``, ...)."""
