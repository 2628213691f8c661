"""Test configuration: 8 simulated CPU devices, deterministic hypothesis profile."""

import os

# Must be set before jax is imported anywhere.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import jax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "gradtx",
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("gradtx")


def _with_x64(enabled: bool):
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", enabled)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


@pytest.fixture
def x64():
    """Runs the test with float64 enabled, restoring the previous setting after."""
    yield from _with_x64(True)


@pytest.fixture
def no_x64():
    """Runs the test with float64 disabled (even in a JAX_ENABLE_X64=1 run), restoring it after."""
    yield from _with_x64(False)
