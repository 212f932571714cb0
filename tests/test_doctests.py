"""The examples in docstrings run: the package's front door, the job service, the app's poll pacing."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["earmark", "earmark.jobs.service", "dashboard.live", "earmark.zoom"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{module} has no examples"
    assert result.failed == 0
