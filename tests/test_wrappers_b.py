"""Wrappers that watch or steer another optimizer: monitor, lookahead, ema_params / swa, dynamic_loss_scale.

Each is checked against a float64 NumPy model written from its paper or
documented rule (lookahead: Zhang et al.'s Algorithm 1; EMA and SWA: the
averages of the parameter trajectory; loss scaling: torch's GradScaler rule),
against optax.lookahead and torch.amp.GradScaler where they exist, and
generically over a registry: every wrapper around adam, sgd+momentum and
rmsprop, under jit and vmap, nested in each other and in chains, with
saturating counters.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gradtx
from gradtx._core.numerics import INT32_MAX
from tests.helpers import make_tree, max_rel_error, quadratic_loss, to_jax

# --------------------------------------------------------------------------- registry

INNERS = {
    "adam": lambda: gradtx.adam(0.05),
    "sgd_momentum": lambda: gradtx.sgd(0.05, momentum=0.9),
    "rmsprop": lambda: gradtx.rmsprop(0.01),
}

# Each wrapper with small periods so that a few steps exercise every branch.
WRAPPERS = {
    "monitor": lambda tx: gradtx.monitor(tx),
    "lookahead": lambda tx: gradtx.lookahead(tx, sync_period=2, slow_step_size=0.5),
    "ema_params": lambda tx: gradtx.ema_params(tx, decay=0.9),
    "swa": lambda tx: gradtx.swa(tx, start=2, every=2),
    "dynamic_loss_scale": lambda tx: gradtx.dynamic_loss_scale(tx, initial_scale=4.0, growth_interval=2),
}

# What each wrapper exposes to the outside, read from a state (jit-able except monitor_stats).
READOUTS = {
    "monitor": lambda s: gradtx.monitor_stats(s),
    "lookahead": gradtx.slow_params,
    "ema_params": gradtx.averaged_params,
    "swa": gradtx.averaged_params,
    "dynamic_loss_scale": gradtx.loss_scale,
}

HYPERPARAMS = {
    "monitor": ("vanishing_threshold", "exploding_threshold"),
    "lookahead": ("sync_period", "slow_step_size"),
    "ema_params": ("ema_decay",),
    "swa": ("swa_start", "swa_every"),
    "dynamic_loss_scale": ("growth_interval", "growth_factor", "backoff_factor", "min_loss_scale"),
}

CASES = [(w, i) for w in WRAPPERS for i in INNERS]
# Every wrapper once and every inner optimizer under each generic check, without the full product.
ROTATION = [(w, list(INNERS)[k % len(INNERS)]) for k, w in enumerate(WRAPPERS)]
ROTATION_2 = [(w, list(INNERS)[(k + 1) % len(INNERS)]) for k, w in enumerate(WRAPPERS)]
STEPS = 5


# A small nested tree (dicts, a list, a 0-d leaf, a None leaf): compile time grows with the leaves.
SHAPES = {"dense": {"w": (3, 4), "b": (4,)}, "seq": [(5,), None], "scalar": ()}


def _params(seed=0, dtype=jnp.float32):
    return to_jax(make_tree(np.random.default_rng(seed), SHAPES), dtype)


def _grad(params, state):
    """The gradient at ``params``, scaled by the loss scale when the optimizer has one."""
    g = jax.grad(quadratic_loss)(params)
    try:
        scale = gradtx.loss_scale(state)
    except ValueError:
        return g
    return jax.tree.map(lambda x: x * scale.astype(x.dtype), g)


def _step(tx, params, state):
    updates, state = tx.update(_grad(params, state), state, params)
    return gradtx.apply_updates(params, updates), state, updates


# Transformations are hashable values, so one compiled step serves every test using an equal one.
_jitted_step = jax.jit(_step, static_argnums=0)


def _run(tx, params, steps=STEPS, *, jit=True):
    """Trains on the quadratic (gradient depends on the parameters).

    Returns the final parameters and state, the parameters after each step and each step's updates.
    """
    state = tx.init(params)
    step = _jitted_step if jit else _step
    trajectory, updates = [], []
    for _ in range(steps):
        params, state, u = step(tx, params, state)
        trajectory.append(params)
        updates.append(u)
    return params, state, trajectory, updates


def _leaves64(tree):
    return [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]


def _assert_close(actual, expected, tol):
    assert max_rel_error(actual, expected) < tol, max_rel_error(actual, expected)


def _assert_identical(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# --------------------------------------------------------------------------- generic battery


@pytest.mark.parametrize("wrapper,inner", ROTATION)
def test_jit_equals_eager(wrapper, inner):
    tx = WRAPPERS[wrapper](INNERS[inner]())
    p_jit, s_jit, _, _ = _run(tx, _params(), 3, jit=True)
    p_eager, s_eager, _, _ = _run(tx, _params(), 3, jit=False)
    _assert_close(p_jit, p_eager, 1e-5)  # XLA fuses the jitted step: a few float32 ulps apart
    out_jit, out_eager = READOUTS[wrapper](s_jit), READOUTS[wrapper](s_eager)
    if isinstance(out_jit, dict) and all(isinstance(v, float) for v in out_jit.values()):
        assert out_jit.keys() == out_eager.keys()
        np.testing.assert_allclose(list(out_jit.values()), list(out_eager.values()), rtol=1e-5)
    else:
        _assert_close(out_jit, out_eager, 1e-5)


@pytest.mark.parametrize("wrapper,inner", ROTATION_2)
def test_vmap_over_independent_runs_equals_loop(wrapper, inner):
    tx = WRAPPERS[wrapper](INNERS[inner]())
    batch = [_params(seed) for seed in range(3)]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *batch)

    def run(params):
        params, state = jax.lax.fori_loop(0, 4, lambda _, ps: _step(tx, *ps)[:2], (params, tx.init(params)))
        readout = state.grad_norm if wrapper == "monitor" else READOUTS[wrapper](state)
        return params, readout

    vmapped = jax.jit(jax.vmap(run))(stacked)
    for i, params in enumerate(batch):
        _assert_close(jax.tree.map(lambda x, i=i: x[i], vmapped), jax.jit(run)(params), 1e-6)


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_compiles_once_and_hyperparams_are_settable_at_depth(wrapper):
    tx = gradtx.chain(gradtx.clip_by_norm(100.0), WRAPPERS[wrapper](gradtx.adam(0.01)))
    params = _params()
    state = tx.init(params)
    traces = []

    @jax.jit
    def step(p, s):
        traces.append(1)
        u, s = tx.update(_grad(p, s), s, p)
        return gradtx.apply_updates(p, u), s

    for i in range(4):
        if i == 2:
            for name in HYPERPARAMS[wrapper]:
                value = gradtx.get_hyperparam(state, name)
                state = gradtx.set_hyperparam(state, name, value + 1)
                assert float(gradtx.get_hyperparam(state, name)) == pytest.approx(float(value) + 1)
        params, state = step(params, state)
    assert len(traces) == 1
    assert float(gradtx.get_hyperparam(state, "learning_rate")) == pytest.approx(0.01)


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_equal_configs_are_equal_hashable_values(wrapper):
    a, b = WRAPPERS[wrapper](gradtx.adam(0.01)), WRAPPERS[wrapper](gradtx.adam(0.01))
    assert a == b and hash(a) == hash(b)
    assert WRAPPERS[wrapper](gradtx.adam(0.02)) != a
    init, update = a  # unpacks like optax's (init, update) pair
    assert callable(init) and callable(update)


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_counters_saturate_at_int32_max(wrapper):
    """From 2**31 - 2, three steps: running counts stay at the maximum, cycle counters
    keep cycling, nothing wraps negative and the updates stay finite."""
    tx = WRAPPERS[wrapper](gradtx.adam(0.01))
    params = _params()
    state = tx.init(params)
    state = jax.tree.map(lambda x: jnp.full_like(x, INT32_MAX - 1) if x.dtype == jnp.int32 else x, state)

    for _ in range(3):
        params, state, updates = _jitted_step(tx, params, state)
        assert all(np.all(np.isfinite(x)) for x in _leaves64(updates))
    counters = [int(x) for x in jax.tree.leaves(state) if x.dtype == jnp.int32]
    assert all(c >= 0 for c in counters), counters
    assert int(state.count) == INT32_MAX
    assert int(state.inner_state[0].count) == INT32_MAX  # adam's own count, inside the wrapper
    assert all(c >= INT32_MAX - 1 or c <= 3 for c in counters), counters  # untouched, saturated or reset
    assert all(np.all(np.isfinite(x)) for x in _leaves64(params))


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_wraps_optax_and_sits_inside_optax_chain(wrapper):
    params = _params()
    ours = WRAPPERS[wrapper](gradtx.sgd(0.05, momentum=0.9))
    around_optax = WRAPPERS[wrapper](optax.sgd(0.05, momentum=0.9))
    in_optax_chain = optax.chain(optax.identity(), WRAPPERS[wrapper](gradtx.sgd(0.05, momentum=0.9)))
    expected, s_ours, _, _ = _run(ours, params)
    for tx in (around_optax, in_optax_chain):
        got, s, _, _ = _run(tx, params)
        _assert_close(got, expected, 1e-6)
        if wrapper != "monitor":
            _assert_close(READOUTS[wrapper](s), READOUTS[wrapper](s_ours), 1e-6)


BAD_ARGUMENTS = [
    (lambda: gradtx.monitor(gradtx.sgd(0.1), vanishing=-1.0), ValueError, "vanishing"),
    (lambda: gradtx.monitor(gradtx.sgd(0.1), exploding=float("nan")), ValueError, "exploding"),
    (lambda: gradtx.monitor("adam"), TypeError, "monitor: tx"),
    (lambda: gradtx.lookahead(gradtx.sgd(0.1), 0, 0.5), ValueError, "sync_period"),
    (lambda: gradtx.lookahead(gradtx.sgd(0.1), 2.5, 0.5), ValueError, "sync_period"),
    (lambda: gradtx.lookahead(gradtx.sgd(0.1), lambda t: 2, 0.5), TypeError, "sync_period"),
    (lambda: gradtx.lookahead(gradtx.sgd(0.1), 5, 1.5), ValueError, "slow_step_size"),
    (lambda: gradtx.lookahead(None, 5, 0.5), TypeError, "fast_tx"),
    (lambda: gradtx.ema_params(gradtx.sgd(0.1), 1.0), ValueError, "decay"),
    (lambda: gradtx.ema_params(gradtx.sgd(0.1), -0.5), ValueError, "decay"),
    (lambda: gradtx.swa(gradtx.sgd(0.1), 0), ValueError, "start"),
    (lambda: gradtx.swa(gradtx.sgd(0.1), 10, every=0), ValueError, "every"),
    (lambda: gradtx.swa(gradtx.sgd(0.1), True), ValueError, "start"),
    (lambda: gradtx.dynamic_loss_scale(gradtx.sgd(0.1), initial_scale=0.0), ValueError, "initial_scale"),
    (lambda: gradtx.dynamic_loss_scale(gradtx.sgd(0.1), growth_interval=0), ValueError, "growth_interval"),
    (lambda: gradtx.dynamic_loss_scale(gradtx.sgd(0.1), growth_factor=0.5), ValueError, "growth_factor"),
    (lambda: gradtx.dynamic_loss_scale(gradtx.sgd(0.1), backoff_factor=0.0), ValueError, "backoff_factor"),
    (lambda: gradtx.dynamic_loss_scale(gradtx.sgd(0.1), backoff_factor=2.0), ValueError, "backoff_factor"),
    (lambda: gradtx.dynamic_loss_scale(gradtx.sgd(0.1), min_scale=-1.0), ValueError, "min_scale"),
]


@pytest.mark.parametrize("make,error,match", BAD_ARGUMENTS, ids=[m for _, _, m in BAD_ARGUMENTS])
def test_bad_arguments_are_rejected_by_name(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("wrapper", ["monitor", "lookahead", "ema_params", "swa"])
def test_update_without_params_says_params_are_needed(wrapper):
    tx = WRAPPERS[wrapper](gradtx.sgd(0.1))
    params = _params()
    with pytest.raises(ValueError, match="needs the current parameters"):
        tx.update(params, tx.init(params))


def test_readout_helpers_need_exactly_one_matching_state():
    params = _params()
    plain = gradtx.adam(0.1).init(params)
    for helper in (gradtx.monitor_stats, gradtx.slow_params, gradtx.averaged_params, gradtx.loss_scale):
        with pytest.raises(ValueError, match=f"{helper.__name__}: no"):
            helper(plain)
    two = gradtx.chain(gradtx.monitor(gradtx.sgd(0.1)), gradtx.monitor(gradtx.sgd(0.1))).init(params)
    with pytest.raises(ValueError, match="holds 2"):
        gradtx.monitor_stats(two)
    assert gradtx.monitor_stats(two[1])["grad_norm"] == 0.0  # a sub-state selects one


# --------------------------------------------------------------------------- monitor


@pytest.mark.parametrize("inner", INNERS)
def test_monitor_passes_updates_through_bit_exactly(inner):
    bare, watched = INNERS[inner](), gradtx.monitor(INNERS[inner]())
    p_bare, s_bare, _, u_bare = _run(bare, _params())
    p_watched, s_watched, _, u_watched = _run(watched, _params())
    _assert_identical(u_watched, u_bare)
    _assert_identical(p_watched, p_bare)
    _assert_identical(s_watched.inner_state, s_bare)


def test_monitor_stats_match_numpy():
    tx = gradtx.monitor(gradtx.adam(0.05))
    params = _params()
    state = tx.init(params)
    grads = jax.grad(quadratic_loss)(params)
    updates, state = jax.jit(tx.update)(grads, state, params)
    stats = gradtx.monitor_stats(state)

    g, u, p = _leaves64(grads), _leaves64(updates), _leaves64(params)
    paths = ["dense/b", "dense/w", "scalar", "seq/0"]  # jax's sorted-key leaf order; no None
    assert [k[len("grad_norm/") :] for k in stats if k.startswith("grad_norm/")] == paths
    np.testing.assert_allclose(stats["grad_norm"], math.sqrt(sum(np.sum(x * x) for x in g)), rtol=1e-6)
    total_u = math.sqrt(sum(np.sum(x * x) for x in u))
    total_p = math.sqrt(sum(np.sum(x * x) for x in p))
    np.testing.assert_allclose(stats["update_ratio"], total_u / total_p, rtol=1e-6)
    for path, gi, ui, pi in zip(paths, g, u, p):
        np.testing.assert_allclose(stats[f"grad_norm/{path}"], np.linalg.norm(gi), rtol=1e-6)
        np.testing.assert_allclose(
            stats[f"update_ratio/{path}"], np.linalg.norm(ui) / np.linalg.norm(pi), rtol=1e-6
        )
    assert stats["vanishing"] == stats["exploding"] == stats["vanishing_leaves"] == 0.0
    assert all(isinstance(v, float) for v in stats.values())


def test_monitor_flags_and_step_counts():
    tx = gradtx.monitor(gradtx.sgd(0.1), vanishing=1e-6, exploding=10.0)
    params = {"a": jnp.ones(3), "b": jnp.ones(2)}
    state = tx.init(params)
    step = jax.jit(tx.update)
    sequence = [  # (grad a, grad b) -> (vanishing, exploding, vanishing leaves)
        ((1.0, 1.0), (0, 0, 0)),
        ((1e-9, 1e-9), (1, 0, 2)),
        ((1.0, 0.0), (0, 0, 1)),  # one dead leaf: the global norm is fine, the leaf count is not
        ((100.0, 1.0), (0, 1, 0)),
        ((jnp.nan, 1.0), (0, 1, 0)),  # a NaN norm explodes (and does not vanish)
        ((jnp.inf, 1.0), (0, 1, 0)),
    ]
    for (ga, gb), (vanishing, exploding, leaves) in sequence:
        _, state = step({"a": jnp.full(3, ga), "b": jnp.full(2, gb)}, state, params)
        stats = gradtx.monitor_stats(state)
        assert (stats["vanishing"], stats["exploding"], stats["vanishing_leaves"]) == (
            vanishing,
            exploding,
            leaves,
        )
    assert stats["vanishing_steps"] == 1.0 and stats["exploding_steps"] == 3.0
    assert float(gradtx.get_hyperparam(state, "exploding_threshold")) == 10.0


def test_monitor_update_ratio_of_zero_parameters():
    """0/0 (nothing moved) reads 0; a zero-initialised leaf that moves reads inf."""
    tx = gradtx.monitor(gradtx.sgd(0.1))
    params = {"moved": jnp.zeros(2), "still": jnp.zeros(2)}
    _, state = tx.update({"moved": jnp.ones(2), "still": jnp.zeros(2)}, tx.init(params), params)
    stats = gradtx.monitor_stats(state)
    assert stats["update_ratio/moved"] == math.inf and stats["update_ratio/still"] == 0.0


def test_monitor_makes_vanishing_gradients_visible_in_a_deep_sigmoid_net():
    """The course notes' vanishing gradients: through ten sigmoid layers the first
    layer's gradient is hundreds of times smaller than the last one's."""
    rng = np.random.default_rng(0)
    layers = [
        {"w": jnp.asarray(rng.standard_normal((16, 16)), jnp.float32), "b": jnp.zeros(16)} for _ in range(10)
    ]
    x = jnp.asarray(rng.standard_normal((32, 16)), jnp.float32)

    def loss(layers):
        h = x
        for layer in layers:
            h = jax.nn.sigmoid(h @ layer["w"] + layer["b"])
        return jnp.mean((h - 1.0) ** 2)

    tx = gradtx.monitor(gradtx.sgd(0.1), vanishing=1e-3)
    _, state = tx.update(jax.grad(loss)(layers), tx.init(layers), layers)
    stats = gradtx.monitor_stats(state)
    assert stats["grad_norm/0/w"] * 100 < stats["grad_norm/9/w"]
    assert stats["vanishing"] == 0.0 and stats["vanishing_leaves"] >= 1.0  # only a per-leaf view shows it


def test_monitor_flags_exploding_gradients_of_a_deep_linear_chain():
    """The course notes' exploding gradients: a product of 50 random 4x4 matrices."""
    rng = np.random.default_rng(0)
    mats = [jnp.asarray(rng.standard_normal((4, 4)), jnp.float32) for _ in range(50)]

    def loss(mats):
        h = jnp.ones(4)
        for m in mats:
            h = m @ h
        return jnp.sum(h)

    tx = gradtx.monitor(gradtx.sgd(0.1))
    _, state = tx.update(jax.grad(loss)(mats), tx.init(mats), mats)
    stats = gradtx.monitor_stats(state)
    assert stats["exploding"] == 1.0 and stats["grad_norm"] > 1e10


def test_monitor_norms_of_float16_gradients_do_not_overflow():
    tx = gradtx.monitor(gradtx.sgd(0.1))
    params = jnp.ones(4, jnp.float16)
    grads = jnp.full(4, 60000.0, jnp.float16)  # each finite; the sum of squares is not, in float16
    updates, state = tx.update(grads, tx.init(params), params)
    assert updates.dtype == jnp.float16
    np.testing.assert_allclose(gradtx.monitor_stats(state)["grad_norm"], 120000.0, rtol=1e-3)


# --------------------------------------------------------------------------- lookahead


def _numpy_adam(lr, b1=0.9, b2=0.999, eps=1e-8):
    def init(p):
        return (0, np.zeros_like(p), np.zeros_like(p))

    def step(p, g, state):
        t, m, v = state
        t, m, v = t + 1, b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        return p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps), (t, m, v)

    return init, step


def _numpy_sgd_momentum(lr, mu):
    def init(p):
        return None

    def step(p, g, buf):
        buf = g if buf is None else mu * buf + g
        return p - lr * buf, buf

    return init, step


def _numpy_quadratic_grad(leaves):
    return [(1.0 + 4.0 * (i % 3)) * (x - 1.0) for i, x in enumerate(leaves)]


def _numpy_lookahead(inner, params, steps, k, alpha, reset_state=False):
    """Zhang et al. (2019), Algorithm 1, on a list of float64 arrays; gradients at the fast weights."""
    init, step = inner
    phi = [p.copy() for p in params]
    theta = [p.copy() for p in params]
    states = [init(p) for p in theta]
    t = 0
    while t < steps:
        for i in range(k):  # inner loop: k fast steps from theta = phi
            grads = _numpy_quadratic_grad(theta)
            theta, states = map(list, zip(*[step(p, g, s) for p, g, s in zip(theta, grads, states)]))
            t += 1
            if t == steps and i < k - 1:  # stopped between two synchronisations
                return theta, phi
        phi = [s + alpha * (f - s) for s, f in zip(phi, theta)]  # outer update
        theta = [s.copy() for s in phi]  # fast weights reset
        if reset_state:
            states = [init(p) for p in theta]
    return theta, phi


@pytest.mark.parametrize(
    "name,gradtx_inner,numpy_inner",
    [
        ("adam", lambda: gradtx.adam(0.05), lambda: _numpy_adam(0.05)),
        ("sgd_momentum", lambda: gradtx.sgd(0.02, momentum=0.9), lambda: _numpy_sgd_momentum(0.02, 0.9)),
    ],
)
@pytest.mark.parametrize("k,alpha,steps", [(3, 0.5, 11), (1, 0.8, 4), (5, 0.0, 12), (4, 1.0, 9)])
def test_lookahead_matches_numpy_algorithm_1(x64, name, gradtx_inner, numpy_inner, k, alpha, steps):
    params = _params(0, jnp.float64)
    tx = gradtx.lookahead(gradtx_inner(), sync_period=k, slow_step_size=alpha)
    fast, state, _, _ = _run(tx, params, steps)
    expected_fast, expected_slow = _numpy_lookahead(numpy_inner(), _leaves64(params), steps, k, alpha)
    _assert_close(_leaves64(fast), expected_fast, 1e-10)
    _assert_close(_leaves64(gradtx.slow_params(state)), expected_slow, 1e-10)


def test_lookahead_reset_state_matches_numpy_algorithm_1(x64):
    params = _params(0, jnp.float64)
    tx = gradtx.lookahead(gradtx.adam(0.05), sync_period=3, slow_step_size=0.5, reset_state=True)
    fast, state, _, _ = _run(tx, params, 10)
    expected_fast, expected_slow = _numpy_lookahead(_numpy_adam(0.05), _leaves64(params), 10, 3, 0.5, True)
    _assert_close(_leaves64(fast), expected_fast, 1e-10)
    _assert_close(_leaves64(gradtx.slow_params(state)), expected_slow, 1e-10)


@pytest.mark.parametrize(
    "inner,reset_state", [("adam", False), ("adam", True), ("sgd_momentum", False), ("rmsprop", True)]
)
def test_lookahead_matches_optax_lookahead(inner, reset_state):
    """optax trains a LookaheadParams(fast, slow) pair; gradtx trains the fast weights and
    keeps the slow ones in its state. Same inner optimizer, same fast and slow weights."""
    params = _params()
    ours = gradtx.lookahead(INNERS[inner](), 3, 0.5, reset_state=reset_state)
    theirs = optax.lookahead(INNERS[inner](), 3, 0.5, reset_state=reset_state)
    fast, state, _, _ = _run(ours, params, 10)

    pair = optax.LookaheadParams.init_synced(params)
    optax_state = theirs.init(pair)

    @jax.jit
    def optax_step(pair, s):
        u, s = theirs.update(jax.grad(quadratic_loss)(pair.fast), s, pair)
        return optax.apply_updates(pair, u), s

    for _ in range(10):
        pair, optax_state = optax_step(pair, optax_state)
    _assert_close(fast, pair.fast, 1e-5)
    _assert_close(gradtx.slow_params(state), pair.slow, 1e-5)


def test_lookahead_with_unit_step_and_period_is_the_inner_optimizer():
    params = _params()
    expected, _, _, _ = _run(gradtx.adam(0.05), params)
    got, state, _, _ = _run(gradtx.lookahead(gradtx.adam(0.05), 1, 1.0), params)
    _assert_close(got, expected, 1e-6)
    _assert_close(gradtx.slow_params(state), expected, 1e-6)


def test_lookahead_sync_period_change_takes_effect_without_recompiling():
    tx = gradtx.lookahead(gradtx.sgd(1.0), sync_period=100, slow_step_size=0.0)
    params = jnp.zeros(1)
    state = tx.init(params)
    step = jax.jit(lambda p, s: tx.update(jnp.ones(1), s, p))
    u, state = step(params, state)
    params = gradtx.apply_updates(params, u)
    state = gradtx.set_hyperparam(state, "sync_period", 2)  # the second step now synchronises
    u, state = step(params, state)
    params = gradtx.apply_updates(params, u)
    assert float(params[0]) == 0.0 and int(state.steps_since_sync) == 0  # alpha = 0: back to the start


# --------------------------------------------------------------------------- EMA and SWA


def _numpy_ema(trajectory, decays, debias, initial):
    ema = [np.zeros_like(x) for x in initial] if debias else [x.copy() for x in initial]
    weight = 1.0
    for theta, d in zip(trajectory, decays):
        ema = [d * e + (1 - d) * x for e, x in zip(ema, theta)]
        weight *= d
    return [e / (1 - weight) for e in ema] if debias else ema


def _numpy_swa(trajectory, start, every):
    chosen = [theta for t, theta in enumerate(trajectory, 1) if t >= start and (t - start) % every == 0]
    return [np.mean(np.stack(xs), axis=0) for xs in zip(*chosen)]


@pytest.mark.parametrize("debias", [True, False])
@pytest.mark.parametrize("inner", INNERS)
def test_ema_params_matches_numpy(inner, debias):
    params = _params()
    tx = gradtx.ema_params(INNERS[inner](), decay=0.8, debias=debias)
    expected_params, _, _, _ = _run(INNERS[inner](), params, 7)
    got_params, state, trajectory, _ = _run(tx, params, 7)
    _assert_identical(got_params, expected_params)  # the average does not touch training
    expected = _numpy_ema([_leaves64(t) for t in trajectory], [0.8] * 7, debias, _leaves64(params))
    _assert_close(_leaves64(gradtx.averaged_params(state)), expected, 1e-5)


def test_ema_with_scheduled_and_overridden_decay_is_debiased_exactly(x64):
    """The debiasing weight is the product of the decays actually used, so
    a schedule or a value set by hand keeps the average an exact weighted mean."""
    schedule = lambda t: 0.5 + 0.4 * (t >= 3)  # noqa: E731
    tx = gradtx.ema_params(gradtx.sgd(0.05), decay=schedule)
    params = _params(0, jnp.float64)
    state = tx.init(params)
    step = jax.jit(lambda p, s: tx.update(jax.grad(quadratic_loss)(p), s, p))
    trajectory, decays = [], []
    for t in range(6):
        if t == 4:
            state = gradtx.set_hyperparam(state, "ema_decay", 0.1)
        decays.append(float(gradtx.get_hyperparam(state, "ema_decay")))
        u, state = step(params, state)
        params = gradtx.apply_updates(params, u)
        trajectory.append(_leaves64(params))
    assert decays == [0.5, 0.5, 0.5, 0.9, 0.1, 0.9]
    expected = _numpy_ema(trajectory, decays, True, trajectory[0])
    _assert_close(_leaves64(gradtx.averaged_params(state)), expected, 1e-12)


def test_ema_before_the_first_update():
    params = {"w": jnp.ones(2)}
    assert np.all(gradtx.averaged_params(gradtx.ema_params(gradtx.sgd(0.1)).init(params))["w"] == 0)
    kept = gradtx.averaged_params(gradtx.ema_params(gradtx.sgd(0.1), debias=False).init(params))
    assert np.all(kept["w"] == 1) and kept["w"] is not params["w"]


def test_averages_of_bfloat16_parameters_are_kept_in_float32():
    """A bfloat16 EMA with decay 0.999 would never move: 0.001 * (p - ema) is below its half-ulp."""
    params = jnp.full(3, 3.0, jnp.bfloat16)  # the quadratic pulls it towards 1
    for tx in (gradtx.ema_params(gradtx.sgd(0.1), 0.999, debias=False), gradtx.swa(gradtx.sgd(0.1), 1)):
        _, state, _, _ = _run(tx, params, 3)
        assert gradtx.averaged_params(state).dtype == jnp.float32
        assert float(gradtx.averaged_params(state)[0]) < 3.0  # 2.9996 for the EMA: 3.0 in bfloat16
    tx = gradtx.ema_params(gradtx.sgd(0.1), 0.999, dtype=jnp.bfloat16)
    assert gradtx.averaged_params(tx.init(params)).dtype == jnp.bfloat16


@pytest.mark.parametrize("start,every,steps", [(1, 1, 6), (2, 2, 7), (3, 4, 12), (9, 1, 8)])
@pytest.mark.parametrize("inner", INNERS)
def test_swa_matches_numpy(inner, start, every, steps):
    params = _params()
    tx = gradtx.swa(INNERS[inner](), start=start, every=every)
    expected_params, _, _, _ = _run(INNERS[inner](), params, steps)
    got_params, state, trajectory, _ = _run(tx, params, steps)
    _assert_identical(got_params, expected_params)
    average = gradtx.averaged_params(state)
    if start > steps:  # nothing averaged yet: the initial parameters
        _assert_identical(average, params)
        assert int(state.num_averaged) == 0
        return
    expected = _numpy_swa([_leaves64(t) for t in trajectory], start, every)
    _assert_close(_leaves64(average), expected, 1e-5)
    assert int(state.num_averaged) == len(range(start, steps + 1, every))


# --------------------------------------------------------------------------- dynamic loss scaling


def _numpy_loss_scale(finite_steps, initial, interval, growth, backoff, min_scale):
    """torch.amp.GradScaler's update rule (``_amp_update_scale_``), plus a floor."""
    scale, tracker, out = initial, 0, []
    for finite in finite_steps:
        if finite:
            tracker += 1
            if tracker == interval:
                if math.isfinite(np.float32(scale * growth)):
                    scale *= growth
                tracker = 0
        else:
            scale, tracker = max(scale * backoff, min_scale), 0
        out.append((scale, tracker))
    return out


def _scripted_grads(finite_steps, seed=0):
    rng = np.random.default_rng(seed)
    grads = []
    for finite in finite_steps:
        g = rng.standard_normal(3).astype(np.float32)
        if not finite:
            g[rng.integers(3)] = rng.choice([np.inf, -np.inf, np.nan])
        grads.append(g)
    return grads


@given(
    finite_steps=st.lists(st.booleans(), min_size=1, max_size=24),
    initial=st.sampled_from([1.0, 3.0, 2.0**15]),
    interval=st.integers(1, 4),
    growth=st.sampled_from([2.0, 4.0]),
    backoff=st.sampled_from([0.5, 0.25, 1.0]),
    min_scale=st.sampled_from([0.0, 1.0]),
)
def test_loss_scale_trajectory_matches_numpy_model(
    finite_steps, initial, interval, growth, backoff, min_scale
):
    """Every configuration runs through one compiled update: the settings live in the state."""
    tx = gradtx.dynamic_loss_scale(gradtx.sgd(0.1))
    params = jnp.ones(3)
    state = tx.init(params)._replace(scale=jnp.float32(initial))
    settings = {
        "growth_interval": interval,
        "growth_factor": growth,
        "backoff_factor": backoff,
        "min_loss_scale": min_scale,
    }
    for name, value in settings.items():
        state = gradtx.set_hyperparam(state, name, value)
    step = _jitted_update(tx)
    expected_params = np.ones(3)
    model = _numpy_loss_scale(finite_steps, initial, interval, growth, backoff, min_scale)
    for g, finite, (scale, tracker) in zip(_scripted_grads(finite_steps), finite_steps, model):
        scaled = jnp.asarray(g) * gradtx.loss_scale(state)
        updates, state = step(scaled, state, params)
        params = gradtx.apply_updates(params, updates)
        if finite:
            expected_params = expected_params - 0.1 * g
        assert float(gradtx.loss_scale(state)) == scale
        assert int(state.good_steps) == tracker and bool(state.last_finite) == finite
        np.testing.assert_allclose(params, expected_params, rtol=1e-5)
    assert int(state.skipped_steps) == finite_steps.count(False)


_STEPS_BY_TX: dict = {}


def _jitted_update(tx):
    """One compiled update per configuration (hypothesis draws repeat them)."""
    if tx not in _STEPS_BY_TX:
        _STEPS_BY_TX[tx] = jax.jit(tx.update)
    return _STEPS_BY_TX[tx]


def test_loss_scale_matches_torch_grad_scaler():
    """torch.amp.GradScaler on CPU (torch >= 2.3) with SGD + momentum against
    dynamic_loss_scale(sgd(momentum)) on a scripted run of finite and overflowing
    steps: same scale trajectory, same skipped steps, same parameters."""
    torch = pytest.importorskip("torch")
    finite_steps = [True, False, True, True, True, False, False, True, True, True, True, True]
    grads = _scripted_grads(finite_steps, seed=3)
    p_torch = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p_torch], lr=0.1, momentum=0.9)
    scaler = torch.amp.GradScaler(
        "cpu", init_scale=8.0, growth_factor=2.0, backoff_factor=0.5, growth_interval=2
    )

    tx = gradtx.dynamic_loss_scale(
        gradtx.sgd(0.1, momentum=0.9), initial_scale=8.0, growth_interval=2, min_scale=0.0
    )
    params = jnp.ones(3)
    state = tx.init(params)
    step = jax.jit(tx.update)
    for g in grads:
        scaler.scale(torch.ones(()))  # initialises the scaler's scale tensor, as scale(loss) does
        p_torch.grad = torch.from_numpy(g.copy()) * scaler.get_scale()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad()

        updates, state = step(jnp.asarray(g) * gradtx.loss_scale(state), state, params)
        params = gradtx.apply_updates(params, updates)
        assert float(gradtx.loss_scale(state)) == scaler.get_scale()
        assert int(state.good_steps) == scaler._get_growth_tracker()
        np.testing.assert_allclose(params, p_torch.detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("inner", INNERS)
def test_loss_scale_skips_overflowing_steps_and_otherwise_is_the_inner_optimizer(inner):
    tx = gradtx.dynamic_loss_scale(INNERS[inner](), initial_scale=2.0**10, growth_interval=3)
    params = _params()
    state = tx.init(params)
    step = jax.jit(tx.update)
    grads = jax.grad(quadratic_loss)(params)
    bad = jax.tree.map(lambda g: g.at[(0,) * g.ndim].set(jnp.inf) if g.size else g, grads)

    updates, skipped = step(bad, state, params)
    assert all(np.all(x == 0) for x in _leaves64(updates))
    _assert_identical(skipped.inner_state, state.inner_state)
    assert float(gradtx.loss_scale(skipped)) == 2.0**9 and int(skipped.skipped_steps) == 1

    expected, _ = INNERS[inner]().update(grads, state.inner_state, params)
    scaled = jax.tree.map(lambda g: g * gradtx.loss_scale(skipped), grads)
    updates, after = step(scaled, skipped, params)
    _assert_close(updates, expected, 1e-6)  # a power-of-two scale divides out exactly
    assert bool(after.last_finite)


def test_loss_scale_scale_growth_stops_before_float32_overflow():
    tx = gradtx.dynamic_loss_scale(gradtx.sgd(0.1), initial_scale=2.0**127, growth_interval=1)
    state = tx.init(jnp.ones(1))
    _, state = tx.update(jnp.ones(1), state, jnp.ones(1))
    assert float(gradtx.loss_scale(state)) == 2.0**127 and int(state.good_steps) == 0


def test_float16_training_needs_loss_scaling():
    """A regression fitted with float32 master weights and float16 computation.

    The gradient of a mean over 4096 examples of tiny residuals underflows
    float16 without scaling (the fit stalls far from the solution); a static
    scale of 2**15 overflows on the first, large-residual steps (the
    parameters become NaN); the dynamic scale backs off from those, skips
    them, and fits the solution a hundred times more accurately.
    """
    rng = np.random.default_rng(0)
    n, d = 4096, 8
    x = jnp.asarray(rng.standard_normal((n, d)), jnp.float16)
    y = jnp.asarray(np.asarray(x, np.float64) @ (1e-4 * rng.standard_normal(d)), jnp.float16)
    solution = np.linalg.lstsq(np.asarray(x, np.float64), np.asarray(y, np.float64), rcond=None)[0]

    def loss(w, scale):
        r = x @ w.astype(jnp.float16) - y
        return jnp.mean(r * r).astype(jnp.float32) * scale

    def train(tx, scale_of, wrapped):
        w = jnp.ones(d, jnp.float32)
        state = tx.init(w)

        @jax.jit
        def step(w, state):
            scale = scale_of(state)
            grads = jax.grad(loss)(w, scale)
            if not wrapped:  # unscale by hand, with no overflow check
                grads = grads / scale
            updates, state = tx.update(grads, state, w)
            return gradtx.apply_updates(w, updates), state

        for _ in range(300):
            w, state = step(w, state)
        return np.linalg.norm(np.asarray(w, np.float64) - solution) / np.linalg.norm(solution), state

    unscaled, _ = train(gradtx.sgd(0.3), lambda s: 1.0, False)
    static, _ = train(gradtx.sgd(0.3), lambda s: 2.0**15, False)
    dynamic, state = train(
        gradtx.dynamic_loss_scale(gradtx.sgd(0.3), growth_interval=50), gradtx.loss_scale, True
    )
    assert unscaled > 0.02
    assert not math.isfinite(static)
    assert dynamic < 1e-3 and dynamic * 100 < unscaled
    assert int(state.skipped_steps) > 0


# --------------------------------------------------------------------------- wrappers inside each other


def test_nested_wrappers_each_do_their_part():
    """dynamic_loss_scale(monitor(ema_params(lookahead(adam)))): training follows
    lookahead(adam) exactly, every helper finds its state at depth, and each
    readout agrees with the plain computation."""
    params = _params()
    plain = gradtx.lookahead(gradtx.adam(0.05), 3, 0.5)
    tx = gradtx.chain(
        gradtx.dynamic_loss_scale(
            gradtx.monitor(gradtx.ema_params(gradtx.lookahead(gradtx.adam(0.05), 3, 0.5), 0.8)),
            initial_scale=4.0,
            growth_interval=2,
        )
    )
    expected, plain_state, _, _ = _run(plain, params, 7)
    got, state, trajectory, _ = _run(tx, params, 7)
    _assert_close(got, expected, 1e-5)  # exact but for XLA's fusion (see OBSERVED below)
    _assert_close(gradtx.slow_params(state), gradtx.slow_params(plain_state), 1e-5)
    ema = _numpy_ema([_leaves64(t) for t in trajectory], [0.8] * 7, True, _leaves64(params))
    _assert_close(_leaves64(gradtx.averaged_params(state)), ema, 1e-5)
    assert float(gradtx.loss_scale(state)) == 4.0 * 2**3
    before_last = trajectory[-2]
    grad_norm = math.sqrt(sum(np.sum(g**2) for g in _leaves64(jax.grad(quadratic_loss)(before_last))))
    np.testing.assert_allclose(gradtx.monitor_stats(state)["grad_norm"], grad_norm, rtol=1e-6)
    names = gradtx.get_hyperparams(state)
    for name in ("learning_rate", "slow_step_size", "ema_decay", "vanishing_threshold", "growth_interval"):
        assert name in names


# (with observers, without, bit-exact): monitor, ema_params and swa never change the updates; nor does
# dynamic_loss_scale with finite gradients, whose power-of-two unscaling is exact (eager runs are
# bit-identical) but makes a different jitted program, where XLA may contract multiply-adds differently.
OBSERVED = [
    (
        lambda: gradtx.monitor(gradtx.lookahead(gradtx.adam(0.05), 2, 0.5)),
        lambda: gradtx.lookahead(gradtx.adam(0.05), 2, 0.5),
        True,
    ),
    (lambda: gradtx.swa(gradtx.monitor(gradtx.rmsprop(0.01)), 2), lambda: gradtx.rmsprop(0.01), True),
    (
        lambda: gradtx.chain(
            gradtx.clip_by_norm(5.0), gradtx.ema_params(gradtx.monitor(gradtx.sgd(0.05, momentum=0.9)))
        ),
        lambda: gradtx.chain(gradtx.clip_by_norm(5.0), gradtx.sgd(0.05, momentum=0.9)),
        True,
    ),
    (
        lambda: gradtx.lookahead(gradtx.swa(gradtx.ema_params(gradtx.adam(0.05)), 3), 3, 0.8),
        lambda: gradtx.lookahead(gradtx.adam(0.05), 3, 0.8),
        True,
    ),
    (
        lambda: gradtx.dynamic_loss_scale(
            gradtx.chain(gradtx.clip_by_norm(5.0), gradtx.monitor(gradtx.rmsprop(0.01)))
        ),
        lambda: gradtx.chain(gradtx.clip_by_norm(5.0), gradtx.rmsprop(0.01)),
        False,
    ),
]


@pytest.mark.parametrize("observed,bare,exact", OBSERVED, ids=range(len(OBSERVED)))
def test_observing_wrappers_in_any_composition_leave_training_unchanged(observed, bare, exact):
    params = _params()
    expected, _, _, _ = _run(bare(), params, 6)
    got, _, _, _ = _run(observed(), params, 6)
    if exact:
        _assert_identical(got, expected)
    else:
        _assert_close(got, expected, 1e-6)


# --------------------------------------------------------------------------- documentation


def test_docs_examples_run():
    """The examples of this module's sections of docs/wrappers.md run and their assertions hold."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "wrappers.md").read_text()
    sections = ("Monitoring", "Lookahead", "Averaged parameters (EMA/SWA)", "Loss scaling")
    parts = [p for p in re.split(r"^## ", text, flags=re.M) if p.split("\n", 1)[0].strip() in sections]
    assert len(parts) == len(sections)
    blocks = re.findall(r"```python\n(.*?)```", "\n".join(parts), re.S)
    assert len(blocks) == 5
    for block in blocks:
        exec(block, {})
