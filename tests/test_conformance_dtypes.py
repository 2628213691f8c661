"""Every registry configuration in every floating dtype: stable state types, finite results, sane precision.

For each configuration and each of float16, bfloat16, float32 (float64 under
x64; complex64 where the entry supports it, a ``TypeError`` naming "complex"
where it does not):

* the state's leaf paths, shapes and dtypes are the same after ``init`` and
  after jitted updates, so a step inside either branch of ``lax.cond``
  type-checks (and that is checked directly);
* parameters keep their dtype and stay finite, and so does the state;
* the first low-precision update matches the float32 update from the same
  starting values within the entry's ``low_precision_rtol``;
* exactly-zero gradients give finite parameters and state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from tests.conformance import (
    assert_finite,
    gradient,
    leaf_types,
    loss,
    make_params,
    rel_error,
    run,
    shapes_for,
    step_fn,
)
from tests.registry import REGISTRY, configs

CONFIGS = [pytest.param(name, build, id=f"{name}-{i}") for name, i, build in configs()]
FLOATS = ["float16", "bfloat16", "float32"]
STEPS = 3


def check_dtype_run(name, build, dtype):
    """Runs STEPS jitted steps in ``dtype``; checks layouts, dtypes, finiteness. Returns the final params."""
    entry, tx = REGISTRY[name], build()
    params = make_params(shapes_for(entry), dtype)
    state = tx.init(params)
    final, final_state = run(entry, tx, params, STEPS)
    assert leaf_types(final) == leaf_types(params), f"{name} changed the parameters' dtypes or shapes"
    assert leaf_types(final_state) == leaf_types(state), (
        f"{name}: state layout after update differs from init"
    )
    assert_finite(final, f"{name} {dtype} params")
    assert_finite(final_state, f"{name} {dtype} state", like=state)
    return final


def first_update(entry, tx, params):
    """The first update ``tx`` makes at ``params``, jitted."""
    grads = gradient(params)
    extra = dict(value=loss(params), grad=grads, value_fn=loss) if entry.needs_value else {}
    return jax.jit(lambda g, s, p: tx.update(g, s, p, **extra)[0])(grads, tx.init(params), params)


def update_error(low, reference):
    """Relative error of a low-precision update, near-zero elements measured against the update's scale."""
    scale = max((float(np.max(np.abs(x), initial=0.0)) for x in jax.tree.leaves(reference)), default=0.0)
    upcast = jax.tree.map(lambda x: np.asarray(x, np.float32), low)
    return rel_error(upcast, reference, atol=0.1 * scale + 1e-30)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name, build", CONFIGS)
def test_dtype_layout_finite_and_precision(name, build, dtype):
    """Three steps keep layouts and finiteness; the first update matches float32 from the same values."""
    check_dtype_run(name, build, dtype)
    if dtype == "float32":
        return
    entry = REGISTRY[name]
    low = make_params(shapes_for(entry), dtype)
    same_values = jax.tree.map(lambda x: x.astype(jnp.float32), low)
    error = update_error(first_update(entry, build(), low), first_update(entry, build(), same_values))
    assert error <= entry.low_precision_rtol, f"{dtype} vs float32: {error:.3g}. {entry.low_precision_reason}"


@pytest.mark.parametrize("name, build", CONFIGS)
def test_float64(name, build, x64):
    check_dtype_run(name, build, jnp.float64)


@pytest.mark.parametrize("name, build", CONFIGS)
def test_complex64(name, build):
    entry = REGISTRY[name]
    if entry.complex:
        check_dtype_run(name, build, jnp.complex64)
        return
    params = make_params(shapes_for(entry), jnp.complex64)
    with pytest.raises(TypeError, match="complex"):
        tx = build()
        run(entry, tx, params, 1)


@pytest.mark.parametrize("name, build", CONFIGS)
def test_mixed_bfloat16_float32_tree(name, build):
    check_dtype_run(name, build, lambda i: jnp.bfloat16 if i % 2 == 0 else jnp.float32)


@pytest.mark.parametrize("name, build", CONFIGS)
def test_step_in_either_branch_of_cond(name, build):
    """``lax.cond`` requires both branches to return the same types: a skipped step must type-check."""
    entry, tx = REGISTRY[name], build()
    params = make_params(shapes_for(entry), lambda i: jnp.bfloat16 if i == 0 else jnp.float32)
    step = step_fn(entry, tx)

    @jax.jit
    def maybe_step(params, state, take):
        return jax.lax.cond(take, step, lambda p, s: (p, s), params, state)

    state = tx.init(params)
    stepped = maybe_step(params, state, True)
    skipped = maybe_step(params, state, False)
    assert rel_error(stepped, jax.jit(step)(params, state)) <= entry.rtol, entry.rtol_reason
    assert rel_error(skipped, (params, state)) == 0


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name, build", CONFIGS)
def test_zero_gradients_stay_finite(name, build, dtype):
    """The float16 zero-gradient NaN (0/0 in a denominator) must not happen in any dtype."""
    check_zero_gradients(name, build, dtype)


@pytest.mark.parametrize("name, build", CONFIGS)
def test_zero_gradients_stay_finite_in_float64_and_complex64(name, build, x64):
    """The same in float64, and in complex64 for the entries that support complex parameters."""
    check_zero_gradients(name, build, jnp.float64)
    if REGISTRY[name].complex:
        check_zero_gradients(name, build, jnp.complex64)


def check_zero_gradients(name, build, dtype):
    entry, tx = REGISTRY[name], build()
    params = make_params(shapes_for(entry), dtype)
    step = jax.jit(step_fn(entry, tx, grad_fn=lambda p: jax.tree.map(jnp.zeros_like, p)))
    state = initial = tx.init(params)
    p = params
    for _ in range(STEPS):
        p, state = step(p, state)
    assert_finite(p, f"{name} {jnp.dtype(dtype)} params after zero gradients")
    assert_finite(state, f"{name} {jnp.dtype(dtype)} state after zero gradients", like=initial)
    assert leaf_types(p) == leaf_types(params)


def test_low_precision_reasons_are_given():
    """A loosened low-precision tolerance must say why."""
    default = REGISTRY["adam"].low_precision_rtol
    for entry in REGISTRY.values():
        if entry.low_precision_rtol != default:
            assert entry.low_precision_reason, f"{entry.name}: low_precision_rtol without a reason"
        if entry.rtol != 1e-5:
            assert entry.rtol_reason, f"{entry.name}: rtol without a reason"


def test_precision_check_can_fail():
    """The low-precision comparison catches a float16 update made at 0.9 times the learning rate."""
    entry = REGISTRY["sgd"]
    low = make_params(shapes_for(entry), jnp.float16)
    same_values = jax.tree.map(lambda x: x.astype(jnp.float32), low)
    wrong = first_update(entry, gradtx.sgd(0.09), low)
    assert update_error(wrong, first_update(entry, gradtx.sgd(0.1), same_values)) > entry.low_precision_rtol
    assert (
        update_error(
            first_update(entry, gradtx.sgd(0.1), low), first_update(entry, gradtx.sgd(0.1), same_values)
        )
        < 1e-2
    )
