"""Every registry configuration: jit == eager, one trace for 20 steps, vmap == a Python loop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import gradtx
from tests.conformance import make_params, rel_error, run, shapes_for, step_fn, tuning_hyperparam
from tests.registry import REGISTRY, configs

CONFIGS = [pytest.param(name, build, id=f"{name}-{i}") for name, i, build in configs()]

# Configurations that leave the parameters where they are, and why.
STILL = {
    "freeze-0": "freezes every leaf",
    "clip_by_norm-1": "max_norm=0 clips every update to zero",
}


@pytest.mark.parametrize("name, build", CONFIGS)
def test_jit_equals_eager_and_traces_once(name, build, request):
    entry, tx = REGISTRY[name], build()
    params = make_params(shapes_for(entry))
    eager, eager_state = run(entry, tx, params, 4, jit=False)

    traces = []
    step = step_fn(entry, tx)

    @jax.jit
    def counted(params, state):
        traces.append(None)
        return step(params, state)

    state = tx.init(params)
    p = params
    for t in range(20):
        p, state = counted(p, state)
        if t == 3:
            assert rel_error(p, eager) <= entry.rtol, entry.rtol_reason
            assert rel_error(state, eager_state) <= entry.rtol
    assert len(traces) == 1, f"{name} retraced: {len(traces)} traces in 20 steps"
    moved = rel_error(p, params) > 0
    assert moved != (request.node.callspec.id in STILL), (
        "nothing moved: the check would be vacuous" if not moved else STILL
    )


@pytest.mark.parametrize("name, build", CONFIGS)
def test_vmap_over_states_equals_loop(name, build):
    entry, tx = REGISTRY[name], build()
    batch = [make_params(shapes_for(entry), seed=seed) for seed in range(3)]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *batch)
    vmapped, _ = jax.jit(jax.vmap(lambda p: run(entry, tx, p, 3, jit=False)))(stacked)
    for i, params in enumerate(batch):
        looped, _ = run(entry, tx, params, 3)
        assert rel_error(jax.tree.map(lambda x, i=i: x[i], vmapped), looped) <= entry.rtol, entry.rtol_reason


@pytest.mark.parametrize("name, build", CONFIGS)
def test_vmap_over_hyperparameter_equals_loop(name, build):
    """A batch of learning rates (or the entry's first hyperparameter) in one vmapped run."""
    entry, tx = REGISTRY[name], build()
    params = make_params(shapes_for(entry))
    state0 = tx.init(params)
    hyper = tuning_hyperparam(state0)
    if hyper is None:
        pytest.skip(f"{name} keeps no hyperparameters in this configuration")
    base = jnp.asarray(gradtx.get_hyperparam(state0, hyper))
    values = jnp.stack([factor * base for factor in (0.5, 0.75, 1.0)])

    def final(value):
        state = gradtx.set_hyperparam(state0, hyper, value)
        return run(entry, tx, params, 3, jit=False, state=state)[0]

    vmapped = jax.jit(jax.vmap(final))(values)
    looped = [jax.jit(final)(v) for v in values]
    for i, expected in enumerate(looped):
        assert rel_error(jax.tree.map(lambda x, i=i: x[i], vmapped), expected) <= entry.rtol, (
            entry.rtol_reason
        )
    if hyper.endswith("learning_rate"):
        assert rel_error(looped[0], looped[2]) > 0, "the learning rate changed nothing: vacuous"
