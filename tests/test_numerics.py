"""Numerical robustness: low precision, zero gradients, dtypes, complex parameters, counters.

Measured optax 0.2.8 behaviours this file pins down (each test skips if optax
changes, so a fixed optax does not fail the suite):

- ``optax.adam`` on an exactly-zero float16 gradient returns NaN updates
  (0 / (0 + eps), with eps = 1e-8 flushed to 0 in float16). In bfloat16 and
  float32 it returns zeros.
- ``optax.inject_hyperparams(optax.adam)`` on bfloat16 parameters stores every
  hyperparameter in bfloat16, so b2 = 0.999 becomes exactly 1.0. The bias
  correction 1 - b2**t is then 0 and the *first* update is already NaN (the
  report we had said "after 3 steps"; it is from step 1), and stays NaN.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

LOW = [jnp.float16, jnp.bfloat16, jnp.float32]
INT32_MAX = np.iinfo(np.int32).max

OPTIMIZERS = {
    "sgd": lambda: gradtx.sgd(0.1),
    "sgd_momentum": lambda: gradtx.sgd(0.1, momentum=0.9),
    "sgd_nesterov": lambda: gradtx.sgd(0.1, momentum=0.9, nesterov=True),
    "sgd_dampening_wd": lambda: gradtx.sgd(0.1, momentum=0.9, dampening=0.5, weight_decay=1e-2),
    "adagrad": lambda: gradtx.adagrad(0.1),
    "rmsprop": lambda: gradtx.rmsprop(0.1),
    "rmsprop_torch_eps": lambda: gradtx.rmsprop(0.1, eps_in_sqrt=False),
    "rmsprop_centered": lambda: gradtx.rmsprop(0.1, centered=True),
    "rmsprop_nesterov": lambda: gradtx.rmsprop(0.1, momentum=0.9, nesterov=True),
    "adadelta": lambda: gradtx.adadelta(),
    "adam": lambda: gradtx.adam(0.1),
    "adamw": lambda: gradtx.adamw(0.1),
    "adamax": lambda: gradtx.adamax(0.1),
    "nadam": lambda: gradtx.nadam(0.1),
    "amsgrad": lambda: gradtx.amsgrad(0.1),
    "noisy_sgd": lambda: gradtx.noisy_sgd(0.1),
    "qhadam": lambda: gradtx.qhadam(0.1),
    "aggmo": lambda: gradtx.aggmo(0.1),
}

TRANSFORMS = {
    "scale": lambda: gradtx.scale(-0.1),
    "scale_by_learning_rate": lambda: gradtx.scale_by_learning_rate(0.1),
    "add_momentum": lambda: gradtx.add_momentum(0.9),
    "add_momentum_nesterov": lambda: gradtx.add_momentum(0.9, nesterov=True),
    "scale_by_adagrad": lambda: gradtx.scale_by_adagrad(),
    "scale_by_adagrad_eps0": lambda: gradtx.scale_by_adagrad(eps=0.0),
    "scale_by_rms": lambda: gradtx.scale_by_rms(),
    "scale_by_rms_eps0": lambda: gradtx.scale_by_rms(eps=0.0),
    "scale_by_rms_centered_eps0": lambda: gradtx.scale_by_rms(eps=0.0, centered=True),
    "scale_by_adadelta": lambda: gradtx.scale_by_adadelta(),
    "scale_by_adadelta_eps0": lambda: gradtx.scale_by_adadelta(eps=0.0),
    "scale_by_adam": lambda: gradtx.scale_by_adam(),
    "scale_by_adam_eps0": lambda: gradtx.scale_by_adam(eps=0.0),
    "scale_by_adam_nesterov_amsgrad": lambda: gradtx.scale_by_adam(nesterov=True, amsgrad=True),
    "scale_by_adamax": lambda: gradtx.scale_by_adamax(),
    "scale_by_adamax_eps0": lambda: gradtx.scale_by_adamax(eps=0.0),
    "scale_by_qhadam": lambda: gradtx.scale_by_qhadam(),
    "scale_by_qhadam_eps0": lambda: gradtx.scale_by_qhadam(eps=0.0),
    "scale_by_aggmo": lambda: gradtx.scale_by_aggmo(),
    "add_noise": lambda: gradtx.add_noise(),
    "add_decayed_weights": lambda: gradtx.add_decayed_weights(1e-2),
    "clip": lambda: gradtx.clip(1.0),
    "clip_by_norm": lambda: gradtx.clip_by_norm(1.0),
    "clip_by_norm_0": lambda: gradtx.clip_by_norm(0.0),
    "clip_by_block_norm": lambda: gradtx.clip_by_block_norm(1.0),
    "clip_by_block_norm_0": lambda: gradtx.clip_by_block_norm(0.0),
    "chain": lambda: gradtx.chain(gradtx.clip_by_norm(1.0), gradtx.scale_by_adam(), gradtx.scale(-0.1)),
    "named_chain": lambda: gradtx.named_chain(("clip", gradtx.clip(1.0)), ("opt", gradtx.adam(0.1))),
    "identity": lambda: gradtx.identity(),
    "stateless": lambda: gradtx.stateless(lambda u, p: jax.tree.map(jnp.negative, u)),
}

ALL = {**OPTIMIZERS, **TRANSFORMS}
# Transformations whose update on a zero gradient is legitimately nonzero.
NONZERO_ON_ZERO_GRAD = {"noisy_sgd", "add_noise", "add_decayed_weights", "adamw", "sgd_dampening_wd"}
# Optimizers whose first step on a fresh direction must point downhill (noise and
# coupled weight decay can legitimately flip the sign of a tiny component).
DESCENT = set(OPTIMIZERS) - {"noisy_sgd", "sgd_dampening_wd"}


def make_params(dtype):
    return {"w": jnp.linspace(-1.0, 1.0, 6).reshape(3, 2).astype(dtype), "b": (jnp.asarray(0.5, dtype),)}


def small_grads(params):
    """Small but nonzero, including a float16 subnormal (1e-6) and mixed signs."""
    return {
        "w": jnp.asarray([[1e-3, -1e-3], [1e-6, -1e-6], [3e-4, -2e-2]]).astype(params["w"].dtype),
        "b": (jnp.asarray(-1e-4).astype(params["b"][0].dtype),),
    }


def all_finite(tree):
    return all(
        bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)
    )


def signature(tree):
    """(shape, dtype, weak_type) of every leaf, with the tree structure."""
    shapes = jax.eval_shape(lambda t: t, tree)
    return jax.tree.structure(tree), [(x.shape, x.dtype, x.weak_type) for x in jax.tree.leaves(shapes)]


# ---------------------------------------------------------------------------
# Zero gradients in low precision
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", LOW, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("name", list(ALL))
def test_zero_gradient_stays_finite(name, dtype):
    tx = ALL[name]()
    params = make_params(dtype)
    state = tx.init(params)
    zeros = jax.tree.map(jnp.zeros_like, params)
    for _ in range(3):
        updates, state = tx.update(zeros, state, params)
        assert all_finite(updates) and all_finite(state), name
        if name not in NONZERO_ON_ZERO_GRAD:
            for u in jax.tree.leaves(updates):
                np.testing.assert_array_equal(np.asarray(u, np.float32), 0.0)
        params = gradtx.apply_updates(params, updates)
    grads = small_grads(params)
    updates, state = tx.update(grads, state, params)
    assert all_finite(updates) and all_finite(state), name
    assert jax.tree.map(lambda u: u.dtype, updates) == jax.tree.map(lambda g: g.dtype, grads)
    if name in DESCENT:
        # Momentum buffers are still zero, so the step is along -g: never uphill,
        # and strictly downhill on the largest component.
        for u, g in zip(jax.tree.leaves(updates), jax.tree.leaves(grads)):
            u, g = np.asarray(u, np.float32), np.asarray(g, np.float32)
            assert np.all(u * g <= 0), (name, u, g)
        assert float(updates["w"][2, 1]) > 0


def test_optax_adam_is_nan_on_zero_float16_gradient_where_gradtx_is_not():
    params = {"w": jnp.ones(3, jnp.float16)}
    zeros = {"w": jnp.zeros(3, jnp.float16)}
    opt = optax.adam(1e-3)
    optax_updates, _ = opt.update(zeros, opt.init(params), params)
    if bool(jnp.all(jnp.isfinite(optax_updates["w"]))):
        pytest.skip("optax.adam no longer returns NaN on zero float16 gradients")
    assert bool(jnp.all(jnp.isnan(optax_updates["w"])))  # measured: NaN in every element

    tx = gradtx.adam(1e-3)
    updates, _ = tx.update(zeros, tx.init(params), params)
    assert updates["w"].dtype == jnp.float16
    np.testing.assert_array_equal(np.asarray(updates["w"], np.float32), 0.0)


def test_optax_adam_zero_gradient_is_fine_in_bfloat16_and_float32():
    """The optax failure is float16-specific (eps = 1e-8 underflows only there)."""
    assert float(jnp.asarray(1e-8, jnp.float16)) == 0.0
    assert float(jnp.asarray(1e-8, jnp.bfloat16)) > 0.0
    for dtype in (jnp.bfloat16, jnp.float32):
        params = {"w": jnp.ones(3, dtype)}
        opt = optax.adam(1e-3)
        u, _ = opt.update({"w": jnp.zeros(3, dtype)}, opt.init(params), params)
        assert all_finite(u)


# ---------------------------------------------------------------------------
# Hyperparameters are stored in float32, never in the parameters' dtype
# ---------------------------------------------------------------------------


def test_bfloat16_would_round_b2_to_one():
    assert float(jnp.asarray(0.999, jnp.bfloat16)) == 1.0  # why this matters


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=lambda d: jnp.dtype(d).name)
def test_hyperparams_stay_float32_with_low_precision_params(dtype):
    tx = gradtx.adam(1e-3)
    state = tx.init(make_params(dtype))
    for _ in range(2):
        b2 = gradtx.get_hyperparam(state, "b2")
        assert b2.dtype == jnp.float32
        assert b2 == np.float32(0.999)
        for name, value in gradtx.get_hyperparams(state).items():
            assert value.dtype == jnp.float32, name
        params = make_params(dtype)
        _, state = tx.update(small_grads(params), state, params)


def _random_grads(rng, params):
    return jax.tree.map(lambda p: jnp.asarray(rng.standard_normal(p.shape), p.dtype), params)


def test_adam_on_bfloat16_stays_finite_and_tracks_float32():
    tx = gradtx.adam(1e-2)
    rng = np.random.default_rng(0)
    p16 = make_params(jnp.bfloat16)
    p32 = jax.tree.map(lambda x: x.astype(jnp.float32), p16)
    s16, s32 = tx.init(p16), tx.init(p32)
    step = jax.jit(lambda g, s, p: tx.update(g, s, p))
    for _ in range(20):
        g16 = _random_grads(rng, p16)
        u16, s16 = step(g16, s16, p16)
        u32, s32 = step(jax.tree.map(lambda x: x.astype(jnp.float32), g16), s32, p32)
        assert all_finite(u16) and all_finite(s16)
        p16, p32 = gradtx.apply_updates(p16, u16), gradtx.apply_updates(p32, u32)
    assert p16["w"].dtype == jnp.bfloat16
    moved = np.abs(np.asarray(p32["w"]) - np.asarray(make_params(jnp.float32)["w"]))
    assert moved.max() > 0.05  # the run really moved the parameters
    # bfloat16 keeps ~3 significant digits: the trajectories agree to its resolution.
    for a, b in zip(jax.tree.leaves(p16), jax.tree.leaves(p32)):
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b), atol=3e-2)


def test_optax_inject_hyperparams_adam_on_bfloat16():
    params = make_params(jnp.bfloat16)
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)
    state = opt.init(params)
    b2 = state.hyperparams["b2"]
    if b2.dtype != jnp.bfloat16:
        pytest.skip("optax.inject_hyperparams no longer stores hyperparameters in the params dtype")
    assert float(b2) == 1.0  # measured: 0.999 rounded to 1.0
    rng = np.random.default_rng(0)
    first_bad = None
    for step in range(1, 21):
        updates, state = opt.update(_random_grads(rng, params), state, params)
        params = optax.apply_updates(params, updates)
        if first_bad is None and not all_finite(updates):
            first_bad = step
    assert first_bad == 1  # measured: NaN from the very first update (1 - 1.0**t == 0)
    assert not all_finite(params)

    # gradtx on the same problem: b2 stays 0.999 in float32 and nothing goes NaN.
    tx = gradtx.adam(1e-3)
    params = make_params(jnp.bfloat16)
    state = tx.init(params)
    for _ in range(20):
        updates, state = tx.update(_random_grads(rng, params), state, params)
        params = gradtx.apply_updates(params, updates)
    assert all_finite(params) and all_finite(state)
    assert gradtx.get_hyperparam(state, "b2") == np.float32(0.999)


# ---------------------------------------------------------------------------
# Dtypes of updates and state
# ---------------------------------------------------------------------------

DTYPE_PAIRS = [
    (jnp.float32, jnp.float32),
    (jnp.bfloat16, jnp.bfloat16),
    (jnp.float16, jnp.float16),
    (jnp.float32, jnp.bfloat16),  # low-precision gradients on float32 master weights
    (jnp.bfloat16, jnp.float32),
]


@pytest.mark.parametrize(
    "param_dtype,grad_dtype",
    DTYPE_PAIRS,
    ids=[f"{jnp.dtype(p).name}-{jnp.dtype(g).name}" for p, g in DTYPE_PAIRS],
)
@pytest.mark.parametrize("name", list(ALL))
def test_dtypes_are_stable(name, param_dtype, grad_dtype):
    """Updates take the gradients' dtype; the state's dtypes never change (so no recompiles)."""
    tx = ALL[name]()
    params = make_params(param_dtype)
    grads = jax.tree.map(lambda p: jnp.full(p.shape, 0.1, grad_dtype), params)
    state = tx.init(params)
    updates, new_state = jax.eval_shape(lambda g, s, p: tx.update(g, s, p), grads, state, params)
    for u in jax.tree.leaves(updates):
        assert u.dtype == jnp.dtype(grad_dtype)
    assert signature(new_state) == signature(state)
    # Both branches of a cond must produce the same types: a skipped step
    # (state unchanged) and a taken one. Traced predicate, so both are checked.
    out = jax.eval_shape(
        lambda pred, g, s, p: jax.lax.cond(pred, lambda: tx.update(g, s, p)[1], lambda: s),
        jnp.bool_(True),
        grads,
        state,
        params,
    )
    assert signature(out) == signature(state)


def _substates(state, field):
    """Every NamedTuple in ``state`` that has ``field``."""
    found = []

    def visit(node):
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            if field in node._fields:
                found.append(node)
            for child in node:
                visit(child)
        elif isinstance(node, (tuple, list)):
            for child in node:
                visit(child)
        elif isinstance(node, dict):
            for child in node.values():
                visit(child)

    visit(state)
    return found


def _leaf_dtypes(tree):
    return {x.dtype for x in jax.tree.leaves(tree)}


@pytest.mark.parametrize(
    "make,mu_fields,nu_fields",
    [
        (lambda **k: gradtx.adam(0.1, **k), ["mu"], ["nu"]),
        (lambda **k: gradtx.adamw(0.1, **k), ["mu"], ["nu"]),
        (lambda **k: gradtx.amsgrad(0.1, **k), ["mu"], ["nu", "nu_max"]),
        (lambda **k: gradtx.nadam(0.1, **k), ["mu"], ["nu"]),
        (lambda **k: gradtx.adamax(0.1, **k), ["mu"], ["nu"]),
        (lambda **k: gradtx.qhadam(0.1, **k), ["mu"], ["nu"]),
        (lambda **k: gradtx.sgd(0.1, momentum=0.9, mu_dtype=k.get("mu_dtype")), ["trace"], []),
        (lambda **k: gradtx.aggmo(0.1, mu_dtype=k.get("mu_dtype")), ["velocities"], []),
        (lambda **k: gradtx.adagrad(0.1, nu_dtype=k.get("nu_dtype")), [], ["sum_of_squares"]),
        (lambda **k: gradtx.rmsprop(0.1, centered=True, momentum=0.9, **k), ["mu", "trace"], ["nu"]),
        (lambda **k: gradtx.adadelta(nu_dtype=k.get("nu_dtype")), [], ["e_g", "e_x"]),
        (lambda **k: gradtx.prodigy(**k), ["mu"], ["nu"]),
    ],
)
def test_mu_and_nu_dtype_options_are_honoured(make, mu_fields, nu_fields):
    params = make_params(jnp.float32)
    grads = small_grads(params)
    for mu_dtype, nu_dtype in [(jnp.bfloat16, None), (None, jnp.bfloat16), (jnp.float16, jnp.bfloat16)]:
        tx = make(mu_dtype=mu_dtype, nu_dtype=nu_dtype)
        state = tx.init(params)
        for _ in range(2):  # after init and after an update
            for field, want in [(f, mu_dtype) for f in mu_fields] + [(f, nu_dtype) for f in nu_fields]:
                (sub,) = _substates(state, field)
                assert _leaf_dtypes(getattr(sub, field)) == {jnp.dtype(want or jnp.float32)}, field
            updates, state = tx.update(grads, state, params)
            assert _leaf_dtypes(updates) == {jnp.dtype(jnp.float32)}
            assert all_finite(updates)


def test_low_precision_moments_stay_close_to_float32():
    """mu in bfloat16 changes Adam's trajectory only at bfloat16 resolution."""
    rng = np.random.default_rng(1)
    grads = [_random_grads(rng, make_params(jnp.float32)) for _ in range(10)]
    finals = []
    for mu_dtype in (None, jnp.bfloat16):
        tx = gradtx.adam(0.05, mu_dtype=mu_dtype)
        params = make_params(jnp.float32)
        state = tx.init(params)
        for g in grads:
            u, state = tx.update(g, state, params)
            params = gradtx.apply_updates(params, u)
        finals.append(params)
    diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(*map(jax.tree.leaves, finals)))
    assert 0 < diff < 0.02


def test_float32_second_moment_fixes_float16_underflow():
    """With float16 params, (1 - b2) * g**2 underflows in a float16 nu; nu_dtype=float32 keeps it."""
    p16 = {"w": jnp.ones(4, jnp.float16)}
    g = {"w": jnp.full(4, 1e-3, jnp.float16)}
    ref_tx = gradtx.adam(0.1)
    p32 = {"w": jnp.ones(4, jnp.float32)}
    g32 = {"w": g["w"].astype(jnp.float32)}
    tx = gradtx.adam(0.1, nu_dtype=jnp.float32)
    s, s32 = tx.init(p16), ref_tx.init(p32)
    for _ in range(10):
        u, s = tx.update(g, s, p16)
        u32, s32 = ref_tx.update(g32, s32, p32)
    assert s[0].nu["w"].dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(u["w"], np.float32), np.asarray(u32["w"]), rtol=2e-3)


# ---------------------------------------------------------------------------
# Complex parameters
# ---------------------------------------------------------------------------


def _complex_problem(steps=6):
    rng = np.random.default_rng(3)
    params = {
        "z": (rng.standard_normal(4) + 1j * rng.standard_normal(4)).astype(np.complex64),
        "s": np.complex64(0.5 - 0.25j),
    }
    grads = [
        {
            k: (rng.standard_normal(np.shape(v)) + 1j * rng.standard_normal(np.shape(v))).astype(np.complex64)
            for k, v in params.items()
        }
        for _ in range(steps)
    ]
    return params, grads


def _run_complex(tx, params, grads):
    params = jax.tree.map(jnp.asarray, params)
    state = tx.init(params)
    for g in grads:
        u, state = tx.update(jax.tree.map(jnp.asarray, g), state, params)
        assert all(x.dtype == jnp.complex64 for x in jax.tree.leaves(u))
        params = gradtx.apply_updates(params, u)
    return params, state


def _numpy_reference(kind, params, grads, lr):
    """Hand-written complex rules: every second moment uses |g|**2 (real)."""
    out = {}
    for k, p in params.items():
        p = np.complex128(p) if np.ndim(p) == 0 else p.astype(np.complex128)
        m, v, acc, trace = 0j, 0.0, 0.0, None
        for t, g in enumerate((gs[k].astype(np.complex128) for gs in grads), start=1):
            if kind == "sgd":
                step = g
            elif kind == "sgd_momentum":
                trace = g if trace is None else 0.9 * trace + g
                step = trace
            elif kind == "adam":
                m = 0.9 * m + 0.1 * g
                v = 0.999 * v + 0.001 * np.abs(g) ** 2
                step = (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
            elif kind == "rmsprop":
                v = 0.9 * v + 0.1 * np.abs(g) ** 2
                step = g / np.sqrt(v + 1e-8)
            elif kind == "adagrad":
                acc = acc + np.abs(g) ** 2
                step = g / (np.sqrt(acc) + 1e-10)
            p = p - lr * step
        out[k] = p
    return out


@pytest.mark.parametrize(
    "kind,make",
    [
        ("sgd", lambda: gradtx.sgd(0.1)),
        ("sgd_momentum", lambda: gradtx.sgd(0.1, momentum=0.9)),
        ("adam", lambda: gradtx.adam(0.1)),
        ("rmsprop", lambda: gradtx.rmsprop(0.1)),
        ("adagrad", lambda: gradtx.adagrad(0.1)),
    ],
)
def test_complex_parameters_match_hand_computed_rules(kind, make):
    params, grads = _complex_problem()
    final, state = _run_complex(make(), params, grads)
    expected = _numpy_reference(kind, params, grads, 0.1)
    for k in params:
        assert final[k].dtype == jnp.complex64
        np.testing.assert_allclose(np.asarray(final[k]), expected[k], rtol=2e-5, atol=2e-6)
    # Second-moment buffers are real, not complex.
    for field in ("nu", "sum_of_squares"):
        for sub in _substates(state, field):
            assert _leaf_dtypes(getattr(sub, field)) == {jnp.dtype(jnp.float32)}


def test_complex_adam_differs_from_squaring_without_modulus():
    """Guard on the reference: using g**2 instead of |g|**2 gives a different (complex) answer."""
    params, grads = _complex_problem()
    final, _ = _run_complex(gradtx.adam(0.1), params, grads)
    z = np.complex128(params["s"])
    m = v = 0j
    for t, gs in enumerate(grads, start=1):
        g = np.complex128(gs["s"])
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g**2
        z = z - 0.1 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    assert abs(complex(final["s"]) - z) > 1e-2


# ---------------------------------------------------------------------------
# Saturating step counters
# ---------------------------------------------------------------------------


def set_counts(state, value):
    """``state`` with every ``count`` field (at any depth) set to ``value`` (int32)."""
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        state = type(state)(*(set_counts(child, value) for child in state))
        if "count" in state._fields:
            state = state._replace(count=jnp.asarray(value, jnp.int32))
        return state
    if isinstance(state, (tuple, list)):
        return type(state)(set_counts(child, value) for child in state)
    if isinstance(state, dict):
        return {k: set_counts(v, value) for k, v in state.items()}
    return state


def counts(state):
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    return [leaf for path, leaf in leaves if getattr(path[-1], "name", None) == "count"]


def test_int32_addition_would_wrap():
    assert int(jnp.asarray(INT32_MAX, jnp.int32) + 1) < 0  # why counters must saturate


@pytest.mark.parametrize("name", list(ALL))
def test_counter_saturates_at_int32_max(name):
    tx = ALL[name]()
    params = make_params(jnp.float32)
    state = tx.init(params)
    if not counts(state):
        assert name in {"identity", "stateless"}  # nothing to count
        return
    state = set_counts(state, INT32_MAX - 1)
    assert all(int(c) == INT32_MAX - 1 for c in counts(state))
    grads = small_grads(params)
    for _ in range(2):  # max - 1 -> max, then max -> max
        updates, state = tx.update(grads, state, params)
        assert all(c.dtype == jnp.int32 and int(c) == INT32_MAX for c in counts(state)), name
        assert all_finite(updates) and all_finite(state), name
        params = gradtx.apply_updates(params, updates)


def test_adam_at_saturated_count_has_no_bias_correction():
    """At t = 2**31 - 1, b**t == 0: the step is exactly the uncorrected m / (sqrt(v) + eps)."""
    tx = gradtx.adam(1.0, eps=0.0)
    params = {"w": jnp.zeros(3)}
    state = set_counts(tx.init(params), INT32_MAX - 1)
    g = jnp.asarray([2.0, -0.5, 1e-3])
    updates, state = tx.update({"w": g}, state, params)
    # m = 0.1 g, v = 0.001 g**2 -> u = -0.1 g / (sqrt(0.001) |g|) = -sqrt(10) sign(g)
    np.testing.assert_allclose(np.asarray(updates["w"]), -np.sqrt(10.0) * np.sign(g), rtol=1e-5)
    updates, _ = tx.update({"w": g}, state, params)  # count stays saturated: same formula
    m, v = 0.19 * g, 0.001999 * g**2
    np.testing.assert_allclose(np.asarray(updates["w"]), -m / np.sqrt(v), rtol=1e-5)
