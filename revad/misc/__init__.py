"""What users build on revad's primitives, at autograd's import paths (``revad.misc.fixed_points``).

>>> from revad.misc.fixed_points import fixed_point
>>> callable(fixed_point)
True
"""
