"""Test configuration: every test is time-bounded (pytest-timeout, set in pyproject.toml), and the
`switchinterval` fixture runs a concurrency test twice: once with CPython's default GIL switch
interval and once with sys.setswitchinterval(1e-6), which forces thread switches between almost
every bytecode and so exposes races that the default interval hides."""

from __future__ import annotations

import resource
import sys
from collections.abc import Iterator

import pytest

# The network tests hold up to 4,000 sockets at once (2,000 connections, both ends); raise the
# soft fd limit toward the hard one where a machine starts lower (1,024 is a common default).
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
_want = 16384 if _hard == resource.RLIM_INFINITY else min(_hard, 16384)
if _soft != resource.RLIM_INFINITY and _soft < _want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (_want, _hard))


@pytest.fixture(params=["default", "1us"])
def switchinterval(request: pytest.FixtureRequest) -> Iterator[float]:
    old = sys.getswitchinterval()
    if request.param == "1us":
        sys.setswitchinterval(1e-6)
    try:
        yield sys.getswitchinterval()
    finally:
        sys.setswitchinterval(old)


@pytest.fixture(params=[1, 2, 4])
def procs(request: pytest.FixtureRequest) -> int:
    return request.param
