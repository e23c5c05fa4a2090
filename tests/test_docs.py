"""Every public name's docstring example runs and prints what it says."""
import doctest

import pytest

import revad


def public_docstrings():
    yield "revad", revad.__doc__
    for name in revad.__all__:
        obj = getattr(revad, name)
        if isinstance(obj, str):
            continue
        yield f"revad.{name}", obj.__doc__
        for attr, member in vars(type(obj) if isinstance(obj, revad.Function) else obj).items() \
                if isinstance(obj, type) else ():
            if not attr.startswith("_") and getattr(member, "__doc__", None):
                yield f"revad.{name}.{attr}", member.__doc__


DOCS = list(public_docstrings())


def test_every_public_name_has_a_runnable_example():
    missing = [name for name, doc in DOCS
               if (name.count(".") == 1 and name != "revad.__version__")
               and (not doc or ">>>" not in doc)]
    assert not missing, missing


@pytest.mark.parametrize("name, doc", [d for d in DOCS if d[1] and ">>>" in d[1]],
                         ids=lambda v: v if isinstance(v, str) and v.startswith("revad") else "")
def test_docstring_examples(name, doc):
    parser = doctest.DocTestParser()
    test = parser.get_doctest(doc, {}, name, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0 and result.attempted > 0
