"""The environment the suite runs in: every tox env has the CPU build of torch that tox.ini pins."""

import os

import pytest
import torch

pytestmark = pytest.mark.harness


@pytest.mark.skipif(not os.environ.get("TOX_ENV_NAME", "").startswith("tf-"), reason="not in a tox release env")
def test_tox_env_has_the_cpu_wheel():
    """tox.ini pins `torch==2.13.0+cpu`, the local CPU wheel: a CUDA build (several GB) must never be installed."""
    assert torch.__version__.endswith("+cpu"), f"torch {torch.__version__} in {os.environ['TOX_ENV_NAME']}"
