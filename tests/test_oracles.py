"""gradtx against torch.optim and optax, on the nested pytree of tests/helpers.py.

torch runs in float32 (as the brief maps it: ``p.grad`` set by hand each step)
and again in float64, where any difference of formula shows up undiluted by
rounding. optax runs in float64: in float32 its Adam family rounds ``b2`` to
float32 in the bias correction but not in the moment update, which alone
moves its parameters ~1.5e-5 (relative) off the float64 reference over 60
steps, while gradtx stays within 1e-6 (see docs/parity.md).
"""

from __future__ import annotations

import numpy as np
import pytest

import gradtx
from tests.reference.cases import (
    OPTAX_CASES,
    TOL64,
    TORCH_CASES,
    amsgrad_vs_optax,
    case_error,
    clip_zero_gradient,
    noise_statistics,
    noise_variance_error,
    tolerance,
)

TORCH_IDS = [f"{c.call} vs {c.oracle}" for c in TORCH_CASES]
OPTAX_IDS = [f"{c.call} vs {c.oracle}" for c in OPTAX_CASES]


@pytest.mark.parametrize("case", TORCH_CASES, ids=TORCH_IDS)
def test_matches_torch_float32(case):
    pytest.importorskip("torch")
    error = case_error(case, np.float32)
    assert error <= tolerance(case, np.float32), f"{case}: max rel error {error:.2e}"


@pytest.mark.parametrize("case", TORCH_CASES, ids=TORCH_IDS)
def test_matches_torch_float64(case, x64):
    pytest.importorskip("torch")
    error = case_error(case, np.float64)
    assert error <= TOL64, f"{case}: max rel error {error:.2e}"


@pytest.mark.parametrize("case", OPTAX_CASES, ids=OPTAX_IDS)
def test_matches_optax_float64(case, x64):
    pytest.importorskip("optax")
    error = case_error(case, np.float64)
    assert error <= TOL64, f"{case}: max rel error {error:.2e}"


def test_amsgrad_differs_materially_from_optax_amsgrad():
    # gradtx (like torch) keeps the max of the uncorrected second moment, optax of
    # the corrected one: the docs say they drift apart, so check that they do.
    pytest.importorskip("optax")
    gap = amsgrad_vs_optax(steps=60)
    assert gap["params"] > 1e-3, gap
    assert gap["displacement"] > 1e-3, gap


def test_clip_by_norm_zero_max_norm_zero_gradient_gives_zeros_not_nan():
    optax = pytest.importorskip("optax")
    np.testing.assert_array_equal(clip_zero_gradient(gradtx.clip_by_norm(0.0)), np.zeros(3))
    assert np.isnan(clip_zero_gradient(optax.clip_by_global_norm(0.0))).all()


NOISE = dict(eta=0.3, gamma=0.55)
NOISE_SIZE = 200_000


def _check_noise_statistics(stats):
    # Per step, the sample mean's standard error is sqrt(var / N) and the sample
    # variance's relative standard error sqrt(2 / N) ~ 0.3%.
    for mean, var in stats:
        assert abs(mean) < 5 * np.sqrt(var / NOISE_SIZE), (mean, var)
    assert noise_variance_error(stats, **NOISE) < 0.02, stats


def test_noisy_sgd_noise_has_annealed_variance():
    tx = gradtx.noisy_sgd(1.0, key=1, **NOISE)
    _check_noise_statistics(noise_statistics(tx, size=NOISE_SIZE))


def test_optax_noisy_sgd_has_the_same_statistics():
    # Random streams differ, so agreement with optax is in distribution only.
    optax = pytest.importorskip("optax")
    tx = optax.noisy_sgd(1.0, key=1, **NOISE)
    _check_noise_statistics(noise_statistics(tx, size=NOISE_SIZE))
