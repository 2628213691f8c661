"""Every registry configuration on 8 simulated CPU devices (see conftest.py).

* Sharded parameters: the state that ``init`` and a jitted step produce is
  sharded like the parameters, and the numbers equal one device's.
* Data parallel: a ``shard_map`` (or ``pmap``) step that averages per-device
  gradients with ``pmean`` equals one device on the whole batch.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx
from tests.conformance import make_params, rel_error, step_fn
from tests.registry import REGISTRY, Entry, configs

CONFIGS = [pytest.param(name, i, build, id=f"{name}-{i}") for name, i, build in configs()]
FIRST_CONFIGS = [pytest.param(e.name, e.configs[0], id=e.name) for e in REGISTRY.values()]

# Auto axes: the compiler propagates shardings, as in most training code. (jax.make_mesh's
# default, explicit axes, is tested on its own below.)
MESH = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
# Dimensions that divide the mesh are sharded (the bias like the weight's columns), the rest replicated.
SHAPES = {"dense": {"w": (8, 4), "b": (4,)}, "scale": ()}
SPECS = {"dense": {"w": P("data", "model"), "b": P("model")}, "scale": P()}
# Square w2, so that the regression gradient of w1 in x @ w1 @ w2 has full rank: Newton-Schulz
# would scale the zero singular values of a rank-deficient one, rounding noise, up to about 1.
MATRIX_SHAPES = {"w1": (8, 4), "w2": (4, 4)}
MATRIX_SPECS = {"w1": P("data", "model"), "w2": P("data", "model")}
STEPS = 3


def _problem(entry: Entry) -> tuple:
    return (MATRIX_SHAPES, MATRIX_SPECS) if entry.matrices_only else (SHAPES, SPECS)


def _sharded_params(entry: Entry, mesh=MESH):
    shapes, specs = _problem(entry)
    return jax.device_put(make_params(shapes), jax.tree.map(lambda s: NamedSharding(mesh, s), specs))


def repeat(step, steps: int = STEPS):
    """``step`` applied ``steps`` times in one program.

    One compilation: calling a jitted step again would compile it a second time, since the
    first step's outputs are placed differently from ``init``'s (its scalars on one device).
    """

    def run(params, state, *batch):
        return jax.lax.fori_loop(0, steps, lambda _, carry: step(*carry, *batch), (params, state))

    return run


@functools.cache
def _sharded_run(name: str, index: int) -> tuple:
    """(params, initial state, params and state after STEPS jitted steps), on sharded parameters."""
    entry, tx = REGISTRY[name], REGISTRY[name].configs[index]()
    params = _sharded_params(entry)
    state0 = tx.init(params)
    return params, state0, *jax.jit(repeat(step_fn(entry, tx)))(params, state0)


def _is_quantized(x) -> bool:
    return isinstance(x, gradtx.QuantizedArray)


def _codes(state):
    """A quantised buffer's codes stand for it: they have its parameter's shape."""
    return jax.tree.map(lambda x: x.codes if _is_quantized(x) else x, state, is_leaf=_is_quantized)


def assert_sharded_like(state, params, when: str) -> None:
    """Each state leaf whose path ends with a parameter's path, and has its shape, is sharded like it.

    Scalars must be replicated. Leaves of other shapes have no parameter to follow and the
    compiler places them as it likes: factored second moments (one axis of the parameter),
    SM3's per-axis accumulators, L-BFGS's (memory, *shape) history, empty placeholders,
    PRNG keys, vector hyperparameters. Their values are checked by the equality test.
    """
    param_leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    for path, x in jax.tree_util.tree_flatten_with_path(_codes(state))[0]:
        where = f"{when}: state{jax.tree_util.keystr(path)}"
        assert isinstance(x, jax.Array), f"{where} is a {type(x).__name__}, not a jax.Array"
        if x.ndim == 0:
            assert x.sharding.is_fully_replicated, f"{where} is a scalar sharded as {x.sharding}"
            continue
        for p_path, p in param_leaves:
            if path[-len(p_path) :] == p_path and x.shape == p.shape:
                assert x.sharding.is_equivalent_to(p.sharding, x.ndim), (
                    f"{where} is sharded as {x.sharding}, its parameter as {p.sharding}"
                )


@pytest.mark.parametrize("name, index, build", CONFIGS)
def test_state_is_sharded_like_params(name, index, build):
    params, state0, final, state = _sharded_run(name, index)
    assert_sharded_like(state0, params, "after init")
    assert_sharded_like(state, params, f"after {STEPS} jitted steps")
    assert_sharded_like(final, params, "the parameters")


@pytest.mark.parametrize("name, index, build", CONFIGS)
def test_sharded_steps_equal_single_device(name, index, build):
    entry = REGISTRY[name]
    _, _, final, state = _sharded_run(name, index)
    tx, params = build(), make_params(_problem(entry)[0])
    expected, expected_state = jax.jit(repeat(step_fn(entry, tx)))(params, tx.init(params))
    assert rel_error(final, expected) <= entry.rtol, entry.rtol_reason
    assert rel_error(state, expected_state) <= entry.rtol, entry.rtol_reason


def test_quantized_state_is_sharded_like_params():
    """8-bit moments of every leaf: the codes follow the parameters (the block scales need not)."""
    entry = REGISTRY["adam"]
    signed, unsigned = (gradtx.QuantizedDtype(signed=s, min_size=0) for s in (True, False))
    tx = gradtx.adam(1e-2, mu_dtype=signed, nu_dtype=unsigned)
    params = _sharded_params(entry)
    state0 = tx.init(params)
    quantized = [x for x in jax.tree.leaves(state0, is_leaf=_is_quantized) if _is_quantized(x)]
    assert len(quantized) == 6, "not every moment of the 3 leaves is quantised"
    assert_sharded_like(state0, params, "after init")
    final, state = jax.jit(repeat(step_fn(entry, tx)))(params, state0)
    assert_sharded_like(state, params, f"after {STEPS} jitted steps")
    single = make_params(SHAPES)
    expected, expected_state = jax.jit(repeat(step_fn(entry, tx)))(single, tx.init(single))
    assert rel_error(final, expected) <= entry.rtol
    assert rel_error(state, expected_state) <= entry.rtol


EXPLICIT_MESH = jax.make_mesh((4, 2), ("data", "model"))  # jax.make_mesh's default: explicit axes
EXPLICIT_CONFIGS = [pytest.param(e.name, e.configs[0], id=e.name) for e in REGISTRY.values()]


@pytest.mark.parametrize("name, build", EXPLICIT_CONFIGS)
def test_explicit_mesh_axes(name, build):
    """The same run on a mesh with explicit axes works, and gives the same numbers.

    There a sharding is part of each array's type, and an operation whose output sharding is
    ambiguous (a dot over sharded axes) is an error instead of the compiler's choice.
    """
    entry, tx = REGISTRY[name], build()
    params = _sharded_params(entry, EXPLICIT_MESH)
    state0 = tx.init(params)
    assert_sharded_like(state0, params, "after init")
    final, state = jax.jit(repeat(step_fn(entry, tx)))(params, state0)
    assert_sharded_like(state, params, f"after {STEPS} jitted steps")
    _, _, expected, expected_state = _sharded_run(name, 0)
    assert rel_error(final, expected) <= entry.rtol, entry.rtol_reason
    assert rel_error(state, expected_state) <= entry.rtol, entry.rtol_reason


# --- data parallel --------------------------------------------------------------------------------

BATCH = 16  # 2 examples on each of the 8 devices
DP_MESH = jax.make_mesh((8,), ("batch",), axis_types=(AxisType.Auto,))


def _batch() -> tuple[jax.Array, jax.Array]:
    rng = np.random.default_rng(1)
    return (
        jnp.asarray(rng.standard_normal((BATCH, 8)), jnp.float32),
        jnp.asarray(rng.standard_normal((BATCH, 4)), jnp.float32),
    )


def _mse(params, x, y) -> jax.Array:
    """Mean squared error of a scaled linear layer (or, for matrices only, two linear layers)."""
    if "w1" in params:
        prediction = x @ params["w1"] @ params["w2"]
    else:
        prediction = params["scale"] * (x @ params["dense"]["w"] + params["dense"]["b"])
    return jnp.mean((prediction - y) ** 2)


def regression_step(entry: Entry, tx, axis: str | None = None):
    """``(params, state, x, y) -> (params, state)``; with ``axis``, a data-parallel step's per-device body.

    Each device differentiates the loss on its shard; ``pmean`` makes that the full-batch
    gradient (equal shards: the mean of the means is the mean). ``pcast`` marks the replicated
    parameters as per-device first: shard_map differentiates a replicated input by summing
    over the devices already, and a ``pmean`` after that would leave the gradient 8 times too
    large. ``value`` and ``value_fn`` must be the full-batch loss too: a line search on
    each device's own loss would take a different step on each device.
    """

    def mean(tree):
        return tree if axis is None else jax.lax.pmean(tree, axis)

    def step(params, state, x, y):
        def value_fn(p):
            return mean(_mse(p, x, y))

        local = params if axis is None else jax.lax.pcast(params, axis, to="varying")
        value, grads = mean(jax.value_and_grad(_mse)(local, x, y))
        extra = dict(value=value, grad=grads, value_fn=value_fn) if entry.needs_value else {}
        updates, state = tx.update(grads, state, params, **extra)
        return gradtx.apply_updates(params, updates), state

    return step


def _full_batch(entry: Entry, tx, params, x, y) -> tuple:
    return jax.jit(repeat(regression_step(entry, tx)))(params, tx.init(params), x, y)


@pytest.mark.parametrize("name, build", FIRST_CONFIGS)
def test_data_parallel_shard_map_equals_full_batch(name, build):
    entry, tx = REGISTRY[name], build()
    params, (x, y) = make_params(_problem(entry)[0]), _batch()
    steps = jax.shard_map(
        repeat(regression_step(entry, tx, axis="batch")),
        mesh=DP_MESH,
        in_specs=(P(), P(), P("batch"), P("batch")),
        out_specs=P(),
    )
    p, state = jax.jit(steps)(params, tx.init(params), x, y)
    expected, expected_state = _full_batch(entry, tx, params, x, y)
    assert rel_error(p, expected) <= entry.rtol, entry.rtol_reason
    assert rel_error(state, expected_state) <= entry.rtol, entry.rtol_reason
    assert name == "freeze" or rel_error(p, params) > 0, "nothing moved: the check would be vacuous"


@pytest.mark.parametrize("name", ["adam", "reduce_on_plateau"])
def test_data_parallel_pmap_equals_full_batch(name):
    """The same with pmap: replicated params and state in, one copy out (``out_axes=None``).

    Not for line searches: under pmap the gradient of a ``pmean``-ed loss is each device's
    own gradient (pmap transposes a psum to a psum), so ``value_fn`` would steer each device's
    search differently, and the devices would wait for each other's collectives forever.
    """
    entry, tx = REGISTRY[name], REGISTRY[name].configs[0]()
    params, (x, y) = make_params(_problem(entry)[0]), _batch()
    n = jax.device_count()
    steps = jax.pmap(
        repeat(regression_step(entry, tx, axis="batch")), "batch", in_axes=(None, None, 0, 0), out_axes=None
    )
    p, state = steps(params, tx.init(params), x.reshape(n, BATCH // n, -1), y.reshape(n, BATCH // n, -1))
    expected, expected_state = _full_batch(entry, tx, params, x, y)
    assert rel_error(p, expected) <= entry.rtol, entry.rtol_reason
    assert rel_error(state, expected_state) <= entry.rtol, entry.rtol_reason
