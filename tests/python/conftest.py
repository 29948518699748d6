"""Fixtures: one context on MHFA_DEVICE (PoCL's CPU device by default) for every test."""
import os

import numpy as np
import pytest

import mhfa


@pytest.fixture(scope="session")
def context():
    with mhfa.Context(os.environ.get("MHFA_DEVICE") or None) as ctx:
        yield ctx


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name, so each test draws its own inputs."""
    seed = sum(map(ord, request.node.name)) + int(os.environ.get("MHFA_TEST_SEED", "0"))
    return np.random.default_rng(seed)
