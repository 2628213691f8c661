"""gradtx against float64 NumPy references written from the papers (tests/reference/).

Each case runs gradtx for ``STEPS`` steps on the nested pytree of
tests/helpers.py (dicts, lists, tuples, a 0-d leaf, a None leaf) and compares
the final parameters with the reference's. The cases live in
tests/reference/cases.py, shared with benchmarks/parity_report.py.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import gradtx
from tests import reference
from tests.helpers import max_rel_error, to_jax
from tests.reference.cases import (
    REFERENCE_CASES,
    TOL64,
    case_error,
    float32_floor,
    jax_problem,
    problem,
    run_transformation,
    tolerance,
)

IDS = [case.call for case in REFERENCE_CASES]


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=IDS)
def test_float32_matches_reference(case):
    error = case_error(case, np.float32)
    assert error <= tolerance(case, np.float32), f"{case}: max rel error {error:.2e}"


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=IDS)
def test_float64_matches_reference(case, x64):
    error = case_error(case, np.float64)
    assert error <= TOL64, f"{case}: max rel error {error:.2e}"


def test_float32_tolerance_stays_tight():
    # The float32 tolerance grows with the rounding floor of each problem; it
    # must stay far below the size of any real formula mismatch (>= 1e-3 here).
    worst = max(tolerance(case, np.float32) for case in REFERENCE_CASES)
    assert worst <= 1e-4, worst


def test_eager_matches_reference_and_jit():
    # Eager runs dispatch op by op (slow to warm up), so one stateful case only.
    case = REFERENCE_CASES[IDS.index("sgd(learning_rate=0.05, momentum=0.9, nesterov=True)")]
    assert case_error(case, np.float32, jit=False) <= tolerance(case, np.float32)
    eager = run_transformation(case.make_tx(), *jax_problem("float32"), jit=False)
    jitted = run_transformation(case.make_tx(), *jax_problem("float32"), jit=True)
    assert max_rel_error(eager, jitted) <= 3 * float32_floor(case)


# --- the references themselves, checked by hand on tiny inputs -------------------------------


def _one_leaf(values):
    return {"w": np.asarray(values, np.float64)}


def test_reference_adam_first_step_is_sign_of_gradient():
    out = reference.adam(_one_leaf([1.0, 1.0]), [_one_leaf([0.5, -2.0])], learning_rate=0.1, eps=0.0)
    np.testing.assert_allclose(out["w"], [0.9, 1.1])


def test_reference_sgd_momentum_by_hand():
    # b1 = g = 1; b2 = 0.5 * 1 + 1 = 1.5; Nesterov step 2 uses g + 0.5 * b2 = 1.75.
    grads = [_one_leaf([1.0]), _one_leaf([1.0])]
    heavy = reference.sgd(_one_leaf([0.0]), grads, learning_rate=1.0, momentum=0.5)
    nesterov = reference.sgd(_one_leaf([0.0]), grads, learning_rate=1.0, momentum=0.5, nesterov=True)
    np.testing.assert_allclose(heavy["w"], [-(1.0 + 1.5)])
    np.testing.assert_allclose(nesterov["w"], [-(1.5 + 1.75)])


def test_reference_aggmo_by_hand():
    # betas (0, 0.5): after two unit gradients the velocities are -1 and -1.5.
    grads = [_one_leaf([1.0]), _one_leaf([1.0])]
    out = reference.aggmo(_one_leaf([0.0]), grads, learning_rate=1.0, betas=(0.0, 0.5))
    np.testing.assert_allclose(out["w"], [-(1.0 + 1.25)])


def test_reference_clip_by_norm_by_hand():
    params = {"a": np.zeros(1), "b": np.zeros(1)}
    out = reference.clip_by_norm(params, [{"a": np.array([3.0]), "b": np.array([4.0])}], max_norm=1.0)
    np.testing.assert_allclose([out["a"][0], out["b"][0]], [0.6, 0.8])


def test_reference_amsgrad_keeps_max_of_uncorrected_moment():
    # v1 = 0.1 * 4 = 0.4, v2 = 0.9 * 0.4 = 0.36 < v1, so step 2 divides by sqrt(0.4 / (1 - 0.81)).
    grads = [_one_leaf([2.0]), _one_leaf([0.0])]
    kw = dict(learning_rate=1.0, b1=0.5, b2=0.9, eps=0.0)
    out = reference.amsgrad(_one_leaf([0.0]), grads, **kw)
    m1, m2 = 0.5 * 2.0, 0.25 * 2.0
    step1 = (m1 / 0.5) / np.sqrt(0.4 / 0.1)
    step2 = (m2 / 0.75) / np.sqrt(0.4 / 0.19)
    np.testing.assert_allclose(out["w"], [-(step1 + step2)])


def test_reference_float32_run_stays_float32():
    params, grads = problem(np.float32, steps=2)
    out = reference.adam(params, grads, dtype=np.float32)
    assert {x.dtype for x in jax.tree.leaves(out)} == {np.dtype(np.float32)}


def test_callable_and_tree_masks_agree():
    # Regression: add_decayed_weights used to drop a mask given as a function.
    by_tree = REFERENCE_CASES[IDS.index("add_decayed_weights(weight_decay=0.05, mask=<tree>)")]
    by_fn = REFERENCE_CASES[IDS.index("add_decayed_weights(weight_decay=0.05, mask=matrices_only)")]
    params, grads = problem(np.float32, steps=3)
    p, gs = to_jax(params, np.float32), [to_jax(g, np.float32) for g in grads]
    a = run_transformation(by_tree.make_tx(), p, gs)
    b = run_transformation(by_fn.make_tx(), p, gs)
    assert max_rel_error(a, b) == 0.0
    unmasked = run_transformation(gradtx.add_decayed_weights(0.05), p, gs)
    assert max_rel_error(a, unmasked) > 1e-3
