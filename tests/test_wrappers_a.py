"""Wrappers: partition / masked / freeze, accumulate, apply_if_finite / zero_nans; checkpoints."""

import contextlib
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx._core.numerics import INT32_MAX
from tests.helpers import grad_stream, nested_params, to_jax

OPTIMIZERS = {
    "adam": lambda: gradtx.adam(1e-2),
    "sgd_momentum": lambda: gradtx.sgd(0.1, momentum=0.9),
    "rmsprop": lambda: gradtx.rmsprop(1e-2),
    "adagrad": lambda: gradtx.adagrad(0.1),
}

# Labels for tests.helpers.SHAPES (its None leaf has no label: it is an empty subtree).
LABELS = {
    "dense": {"w": "a", "b": "b"},
    "seq": ["a", ("b", None)],
    "tup": ("b", "a"),
}


def _params():
    return to_jax(nested_params(0), jnp.float32)


def _grads(steps, seed=0):
    return [to_jax(g, jnp.float32) for g in grad_stream(seed, steps)]


def _only(tree, labels, label):
    """``tree`` with the leaves not labelled ``label`` replaced by None."""
    return jax.tree.map(lambda x, lab: x if lab == label else None, tree, labels)


@functools.partial(jax.jit, static_argnums=0)
def _jit_step(tx, params, state, grads):
    """One step; ``tx`` is static, so equal optimizers built by different tests share the compile."""
    updates, state = tx.update(grads, state, params)
    return gradtx.apply_updates(params, updates), state, updates


def _run(tx, params, grads, *, jit=True):
    """Steps of ``tx`` (jitted, or op by op); returns the final params, state and the list of updates."""
    state = tx.init(params)
    seen = []
    with contextlib.nullcontext() if jit else jax.disable_jit():
        for g in grads:
            params, state, u = _jit_step(tx, params, state, g)
            seen.append(u)
    return params, state, seen


def _assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _assert_trees_close(a, b):
    """Equal up to float32 rounding: XLA fuses (and contracts to FMA) differently across program
    boundaries such as a ``lax.cond`` branch, so two different jitted programs computing the same
    formula may differ in the last bit."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)


def _assert_same_run(run_a, run_b):
    """``run_a(jit)`` and ``run_b(jit)`` return the same (params, state): bit for bit op by op, and
    up to rounding when each is one jitted program."""
    for jit, check in ((False, _assert_trees_equal), (True, _assert_trees_close)):
        (pa, sa), (pb, sb) = run_a(jit), run_b(jit)
        check(pa, pb)
        check(sa, sb)


def _merge(a, b):
    """Leaf-wise: a's leaf where it is not None, else b's."""
    return jax.tree.map(lambda x, y: y if x is None else x, a, b, is_leaf=lambda x: x is None)


# ----------------------------------------------------------------------------- partition


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_partition_equals_each_optimizer_run_on_its_own_leaves(name):
    """Group "a" behaves as the optimizer alone on "a"'s leaves, group "b" as sgd on "b"'s."""
    params, grads = _params(), _grads(5)
    tx = gradtx.partition({"a": OPTIMIZERS[name](), "b": gradtx.sgd(0.5)}, LABELS)

    def grouped(jit):
        p, s, _ = _run(tx, params, grads, jit=jit)
        return p, s.inner_states["a"]

    def separate(jit):
        pa, sa, _ = _run(
            OPTIMIZERS[name](), _only(params, LABELS, "a"), [_only(g, LABELS, "a") for g in grads], jit=jit
        )
        pb, _, _ = _run(
            gradtx.sgd(0.5), _only(params, LABELS, "b"), [_only(g, LABELS, "b") for g in grads], jit=jit
        )
        return _merge(pa, pb), sa  # sa has None for b's leaves: partition keeps no state for them

    _assert_same_run(grouped, separate)


def test_partition_label_function_and_per_group_hyperparameters():
    params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
    tx = gradtx.partition(
        {"decay": gradtx.adamw(0.1, weight_decay=0.5), "plain": gradtx.sgd(0.1)},
        lambda p: jax.tree.map(lambda x: "decay" if x.ndim == 2 else "plain", p),
    )
    state = tx.init(params)
    names = gradtx.get_hyperparams(state)
    assert names["weight_decay"] == pytest.approx(0.5)
    lr_paths = sorted(k for k in names if k.endswith("['learning_rate']"))
    assert len(lr_paths) == 2 and "decay" in lr_paths[0] and "plain" in lr_paths[1]
    with pytest.raises(KeyError, match="ambiguous"):
        gradtx.get_hyperparam(state, "learning_rate")
    state = gradtx.set_hyperparam(state, lr_paths[1], 0.0)  # silence the "plain" group only
    updates, _ = jax.jit(tx.update)(params, state, params)
    np.testing.assert_array_equal(updates["b"], 0.0)
    assert np.all(np.asarray(updates["w"]) < 0)


def test_partition_rejects_unknown_labels_and_warns_on_unused_transforms():
    params = {"w": jnp.ones(2), "b": jnp.ones(2)}
    tx = gradtx.partition({"x": gradtx.sgd(0.1)}, {"w": "x", "b": "typo"})
    with pytest.raises(ValueError, match="'typo' have no transformation"):
        tx.init(params)
    tx = gradtx.partition({"x": gradtx.sgd(0.1), "unused": gradtx.adam(0.1)}, {"w": "x", "b": "x"})
    with pytest.warns(UserWarning, match="no parameter is labelled 'unused'"):
        state = tx.init(params)
    updates, _ = tx.update(params, state, params)  # still works; the unused group does nothing
    np.testing.assert_allclose(updates["w"], -0.1)
    with pytest.raises(TypeError, match="dict"):
        gradtx.partition([gradtx.sgd(0.1)], {"w": "x"})
    with pytest.raises(ValueError, match="must not be empty"):
        gradtx.partition({}, {"w": "x"})
    with pytest.raises(TypeError, match=r"transforms\['x'\]"):
        gradtx.partition({"x": 0.1}, {"w": "x"})
    with pytest.raises(ValueError, match="labels"):
        gradtx.partition({"x": gradtx.sgd(0.1)}, {"w": "x"}).init(params)


def test_masked_applies_tx_to_masked_leaves_only_and_keeps_no_state_for_the_rest():
    params = {"w": jnp.ones(3), "b": jnp.ones(2)}
    for name, make in OPTIMIZERS.items():
        tx = gradtx.masked(make(), {"w": True, "b": False})
        got, state, ups = _run(tx, params, [params] * 3)
        ref, ref_state, _ = _run(make(), {"w": params["w"], "b": None}, [{"w": params["w"], "b": None}] * 3)
        _assert_trees_close(got["w"], ref["w"])
        _assert_trees_close(state.inner_state, ref_state)  # no state for "b"
        np.testing.assert_array_equal(ups[-1]["b"], params["b"])  # passed through unchanged
    with pytest.raises(TypeError, match="Python bools"):
        gradtx.masked(gradtx.sgd(0.1), {"w": 1, "b": 0})
    with pytest.raises(TypeError, match="masked: tx"):
        gradtx.masked("adam", {"w": True})


def test_freeze_gives_zero_updates_and_frozen_leaves_get_no_optimizer_state():
    params = {"embed": jnp.ones(4), "head": jnp.ones(2)}
    tx = gradtx.partition(
        {"train": gradtx.adamw(0.1), "frozen": gradtx.freeze()}, {"embed": "frozen", "head": "train"}
    )
    got, state, _ = _run(tx, params, [params] * 3)
    np.testing.assert_array_equal(got["embed"], params["embed"])
    assert not np.allclose(got["head"], params["head"])
    assert all(leaf.shape != (4,) for leaf in jax.tree.leaves(state))
    # freeze(mask) after an optimizer: adamw's decay would otherwise move the frozen leaf.
    tx = gradtx.chain(gradtx.adamw(0.1, weight_decay=0.5), gradtx.freeze({"embed": True, "head": False}))
    got, _, _ = _run(tx, params, [params] * 3)
    np.testing.assert_array_equal(got["embed"], params["embed"])
    with pytest.raises(TypeError, match="freeze: mask leaves must be Python bools"):
        gradtx.freeze({"embed": "yes"})


def test_prefix_labels_and_static_specs_inside_other_wrappers():
    """A label can name a whole subtree, and a static label tree or mask still fits inside another wrapper."""
    layer = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
    params = {"enc": layer, "dec": layer}
    inner = gradtx.partition(
        {
            "decay": gradtx.adamw(0.1, weight_decay=0.5),
            "plain": gradtx.masked(gradtx.sgd(0.1), {"enc": True, "dec": True}),
        },
        {"enc": {"w": "decay", "b": "plain"}, "dec": {"w": "decay", "b": "plain"}},
    )
    tx = gradtx.partition({"frozen": gradtx.freeze(), "train": inner}, {"enc": "frozen", "dec": "train"})
    got, state, _ = _run(tx, params, [params] * 3)
    _assert_trees_equal(got["enc"], layer)
    ref_w, _, _ = _run(gradtx.adamw(0.1, weight_decay=0.5), layer["w"], [layer["w"]] * 3)
    ref_b, _, _ = _run(gradtx.sgd(0.1), layer["b"], [layer["b"]] * 3)
    _assert_trees_close(got["dec"], {"w": ref_w, "b": ref_b})
    assert [x.shape for x in jax.tree.leaves(state.inner_states["train"].inner_states["decay"][0].mu)] == [
        (2, 2)
    ]


# ----------------------------------------------------------------------------- accumulate


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_accumulate_equals_one_step_on_the_mean_gradient(name):
    """k micro-steps == one inner step on mean(g_1..g_k) (bit for bit op by op), zeros in between."""
    k, windows = 4, 3
    params, grads = _params(), _grads(k * windows)
    big = []
    for w in range(windows):
        acc = jax.tree.map(jnp.zeros_like, params)
        for g in grads[w * k : (w + 1) * k]:
            acc = jax.tree.map(jnp.add, acc, g)
        big.append(jax.tree.map(lambda a: a / k, acc))
    out = {}

    def accumulated(jit):
        p, s, out["ups"] = _run(gradtx.accumulate(OPTIMIZERS[name](), every_k=k), params, grads, jit=jit)
        out["state"] = s
        return p, s.inner_state

    def one_big_batch(jit):
        p, s, _ = _run(OPTIMIZERS[name](), params, big, jit=jit)
        return p, s

    _assert_same_run(accumulated, one_big_batch)
    for i, u in enumerate(out["ups"]):
        if (i + 1) % k:
            assert all(not np.any(np.asarray(x)) for x in jax.tree.leaves(u))
    assert int(out["state"].count) == windows and int(out["state"].mini_step) == 0


@pytest.mark.parametrize("name", ["adam", "sgd_momentum"])
def test_accumulate_matches_the_big_batch_gradient_of_a_real_loss(name):
    rng = np.random.default_rng(0)
    x, y = (
        jnp.asarray(rng.standard_normal((32, 5)), jnp.float32),
        jnp.asarray(rng.standard_normal(32), jnp.float32),
    )
    loss = lambda p, xb, yb: jnp.mean((xb @ p["w"] + p["b"] - yb) ** 2)  # noqa: E731
    grad = jax.jit(jax.grad(loss))
    params = {"w": jnp.zeros(5), "b": jnp.zeros([])}
    micro, big = gradtx.accumulate(OPTIMIZERS[name](), every_k=4), OPTIMIZERS[name]()
    ms, bs = micro.init(params), big.init(params)
    pm = pb = params
    for _ in range(5):
        for i in range(4):
            pm, ms, _ = _jit_step(micro, pm, ms, grad(pm, x[8 * i : 8 * i + 8], y[8 * i : 8 * i + 8]))
        pb, bs, _ = _jit_step(big, pb, bs, grad(pb, x, y))
    _assert_trees_close(pm, pb)  # the mean of the micro-batch means is the big batch's mean gradient


def test_accumulate_sum_reduction():
    tx = gradtx.accumulate(gradtx.sgd(1.0), every_k=3, reduction="sum")
    _, _, ups = _run(tx, jnp.zeros(1), [jnp.ones(1)] * 3)
    np.testing.assert_array_equal([float(u[0]) for u in ups], [0.0, 0.0, -3.0])


def test_accumulate_schedule_for_k_compiles_once_and_follows_the_boundary_rule():
    tx = gradtx.accumulate(gradtx.sgd(1.0), every_k=lambda n: 1 + n)  # windows of 1, 2, 3, 4 micro-batches
    traces = []

    @jax.jit
    def step(s, g):
        traces.append(1)
        return tx.update(g, s)

    state, emitted = tx.init(jnp.zeros(1)), []
    for i in range(10):
        u, state = step(state, jnp.full(1, float(i + 1)))
        emitted.append(float(u[0]))
    assert len(traces) == 1
    # mean of micro-batches 1 | 2,3 | 4,5,6 | 7,8,9,10
    assert emitted == [-1.0, 0, -2.5, 0, 0, -5.0, 0, 0, 0, -8.5]
    assert float(gradtx.get_hyperparam(state, "every_k")) == 5
    # Lowering k mid-window closes the window at the next micro-step (>= rule).
    u, state = step(state, jnp.ones(1))
    u, state = step(state, jnp.ones(1))
    state = gradtx.set_hyperparam(state, "every_k", 2)
    u, state = step(state, jnp.ones(1))
    assert float(u[0]) == -1.0 and int(state.mini_step) == 0


def test_accumulate_rejects_bad_arguments():
    with pytest.raises(ValueError, match="every_k must be >= 1"):
        gradtx.accumulate(gradtx.sgd(0.1), 0)
    with pytest.raises(TypeError, match="every_k must be an int"):
        gradtx.accumulate(gradtx.sgd(0.1), 2.5)
    with pytest.raises(ValueError, match="reduction"):
        gradtx.accumulate(gradtx.sgd(0.1), 2, reduction="max")
    with pytest.raises(TypeError, match="accumulate: tx"):
        gradtx.accumulate(None, 2)


# ----------------------------------------------------------------------------- NaN safety


def _with_bad_steps(grads, bad):
    """The stream with the first element of every leaf set to NaN (odd steps) or inf (even) in ``bad``."""

    def poison(x, value):
        return x.at[(0,) * x.ndim].set(value)

    return [
        jax.tree.map(lambda x, i=i: poison(x, jnp.nan if i % 2 else jnp.inf), g) if i in bad else g
        for i, g in enumerate(grads)
    ]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_apply_if_finite_skips_bad_steps_as_if_they_never_happened(name):
    params, grads = _params(), _grads(8)
    bad = {2, 3, 6}
    tx = gradtx.apply_if_finite(OPTIMIZERS[name](), max_consecutive_errors=5)
    out = {}

    def guarded(jit):
        p, s, out["ups"] = _run(tx, params, _with_bad_steps(grads, bad), jit=jit)
        out["state"] = s
        return p, s.inner_state

    def without_bad_steps(jit):
        p, s, _ = _run(OPTIMIZERS[name](), params, [g for i, g in enumerate(grads) if i not in bad], jit=jit)
        return p, s  # the inner step counter did not count the skipped steps

    _assert_same_run(guarded, without_bad_steps)
    for i in bad:
        assert all(not np.any(np.asarray(x)) for x in jax.tree.leaves(out["ups"][i]))
    state = out["state"]
    assert int(state.total_notfinite) == 3 and int(state.notfinite_count) == 0 and bool(state.last_finite)


def test_apply_if_finite_gives_up_after_max_consecutive_errors():
    tx = gradtx.apply_if_finite(gradtx.sgd(1.0, momentum=0.5), max_consecutive_errors=2)
    nan = jnp.full(1, jnp.nan)
    _, state, ups = _run(tx, jnp.zeros(1), [jnp.ones(1), nan, nan, nan, nan, jnp.ones(1)])
    flags = [bool(np.isnan(u[0])) for u in ups]
    assert flags == [False, False, False, True, True, True]  # 2 skipped, then let through (state is NaN now)
    assert int(state.total_notfinite) == 4 and int(state.notfinite_count) == 0
    assert float(gradtx.get_hyperparam(state, "max_consecutive_errors")) == 2
    _, state, ups = _run(gradtx.apply_if_finite(gradtx.sgd(1.0), 0), jnp.zeros(1), [nan])
    assert np.isnan(ups[0][0]) and int(state.notfinite_count) == 1  # 0 = never skip
    with pytest.raises(ValueError, match="max_consecutive_errors must be >= 0"):
        gradtx.apply_if_finite(gradtx.sgd(0.1), -1)
    with pytest.raises(TypeError, match="max_consecutive_errors must be an int"):
        gradtx.apply_if_finite(gradtx.sgd(0.1), 1.5)


def test_zero_nans_replaces_nans_and_records_them_per_leaf():
    tx = gradtx.zero_nans()
    g = {"a": jnp.array([1.0, jnp.nan, jnp.inf]), "b": jnp.ones(2, jnp.bfloat16)}
    u, state = jax.jit(tx.update)(g, tx.init(g))
    np.testing.assert_array_equal(u["a"], [1.0, 0.0, np.inf])  # infinities are left alone
    assert u["b"].dtype == jnp.bfloat16
    assert bool(state.found_nan["a"]) and not bool(state.found_nan["b"])
    u, state = tx.update({"a": jnp.ones(3), "b": g["b"]}, state)
    assert not bool(state.found_nan["a"])


# ----------------------------------------------------------------------------- composition


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_wrappers_nest_inside_each_other_and_chain(name):
    """chain(clip, partition({main: apply_if_finite(accumulate(opt)), frozen: freeze()})) equals the
    same chain run on the main leaves alone; the frozen leaves never move, NaN or not."""
    params, grads = _params(), _grads(8)
    stream = _with_bad_steps(grads, {5})

    def inner():
        return gradtx.apply_if_finite(
            gradtx.accumulate(OPTIMIZERS[name](), every_k=2), max_consecutive_errors=3
        )

    labels = jax.tree.map(lambda lab: "main" if lab == "a" else "frozen", LABELS)
    tx = gradtx.chain(
        gradtx.clip(1.0), gradtx.partition({"main": inner(), "frozen": gradtx.freeze()}, labels)
    )
    got, state, _ = _run(tx, params, stream)
    main = lambda t: _only(t, labels, "main")  # noqa: E731
    ref, ref_state, _ = _run(gradtx.chain(gradtx.clip(1.0), inner()), main(params), [main(g) for g in stream])
    _assert_trees_close(main(got), ref)
    _assert_trees_close(state[1].inner_states["main"], ref_state[1])
    _assert_trees_equal(_only(got, labels, "frozen"), _only(params, labels, "frozen"))
    guard = state[1].inner_states["main"]
    # apply_if_finite outside accumulate checks each micro-batch: the NaN one (5) is dropped, so
    # the windows are (0, 1), (2, 3), (4, 6) and 7 is pending.
    assert int(guard.total_notfinite) == 1
    assert int(guard.inner_state.count) == 3 and int(guard.inner_state.mini_step) == 1
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(got))


def test_accumulate_outside_apply_if_finite_skips_the_poisoned_window():
    params, grads = _params(), _grads(6)
    tx = gradtx.accumulate(gradtx.apply_if_finite(gradtx.adam(1e-2), 3), every_k=2)
    means = [
        jax.tree.map(lambda a, b: (jnp.zeros_like(a) + a + b) / 2, grads[i], grads[i + 1]) for i in (0, 4)
    ]
    out = {}

    def accumulated(jit):
        p, out["state"], _ = _run(tx, params, _with_bad_steps(grads, {3}), jit=jit)
        return p, out["state"].inner_state.inner_state

    def good_windows_only(jit):
        p, s, _ = _run(gradtx.adam(1e-2), params, means, jit=jit)
        return p, s

    _assert_same_run(accumulated, good_windows_only)
    assert int(out["state"].inner_state.total_notfinite) == 1


def test_wrappers_are_equal_values_and_a_static_jit_argument_compiles_once():
    def build():
        return gradtx.chain(
            gradtx.partition(
                {
                    "a": gradtx.apply_if_finite(gradtx.accumulate(gradtx.adam(1e-3), 2), 3),
                    "b": gradtx.freeze(),
                },
                {"w": "a", "b": "b"},
            ),
            gradtx.masked(gradtx.clip(1.0), {"w": True, "b": False}),
            gradtx.zero_nans(),
        )

    assert build() == build() and hash(build()) == hash(build())
    assert gradtx.accumulate(gradtx.sgd(0.1), 2) != gradtx.accumulate(gradtx.sgd(0.1), 3)
    assert gradtx.partition({"a": gradtx.sgd(0.1)}, {"w": "a"}) != gradtx.partition(
        {"a": gradtx.sgd(0.2)}, {"w": "a"}
    )
    traces = []

    def step(tx, params, state):
        traces.append(1)
        return tx.update(params, state, params)

    step = jax.jit(step, static_argnums=0)
    params = {"w": jnp.ones(2), "b": jnp.ones(2)}
    state = build().init(params)
    for _ in range(3):
        _, state = step(build(), params, state)
    assert len(traces) == 1


def test_wrappers_vmap_over_a_batch_of_learning_rates_and_nan_flags():
    """Under vmap the skip/accumulate conditions are batched: each member decides on its own."""
    tx = gradtx.partition(
        {"a": gradtx.apply_if_finite(gradtx.accumulate(gradtx.adam(1e-2), 2), 3), "b": gradtx.freeze()},
        {"w": "a", "b": "b"},
    )
    params = {"w": jnp.ones(3), "b": jnp.ones(2)}

    def two_steps(lr, g):
        state = gradtx.set_hyperparam(tx.init(params), "learning_rate", lr)
        for _ in range(2):
            updates, state = tx.update(g, state, params)
        return updates

    grads = {"w": jnp.array([[1.0, 2.0, 3.0], [jnp.nan, 1.0, 1.0]]), "b": jnp.ones((2, 2))}
    updates = jax.jit(jax.vmap(two_steps))(jnp.array([0.1, 0.2]), grads)
    np.testing.assert_allclose(updates["w"], [[-0.1, -0.1, -0.1], [0.0, 0.0, 0.0]], rtol=1e-5)
    np.testing.assert_array_equal(updates["b"], 0.0)


# ----------------------------------------------------------------------------- saturation

COUNTERS = ("count", "notfinite_count", "total_notfinite")


def _bump(state, names, value=INT32_MAX - 1):
    """``state`` with its int32 counters called ``names`` set to ``value``."""

    def bump(path, leaf):
        return jnp.full_like(leaf, value) if getattr(path[-1], "name", None) in names else leaf

    return jax.tree_util.tree_map_with_path(bump, state)


def _counters(state):
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    return {jax.tree_util.keystr(p): int(x) for p, x in leaves if getattr(p[-1], "name", None) in COUNTERS}


@pytest.mark.parametrize(
    "wrap, guarded",
    [
        (lambda tx: gradtx.partition({"a": tx}, {"w": "a"}), False),
        (lambda tx: gradtx.masked(tx, {"w": True}), False),
        (lambda tx: gradtx.accumulate(tx, every_k=2), False),
        (lambda tx: gradtx.apply_if_finite(tx, 10), True),
        (
            lambda tx: gradtx.partition(
                {"a": gradtx.apply_if_finite(gradtx.accumulate(tx, 2), 10)}, {"w": "a"}
            ),
            True,
        ),
    ],
    ids=["partition", "masked", "accumulate", "apply_if_finite", "nested"],
)
def test_counters_saturate_at_int32_max_and_updates_stay_finite(wrap, guarded):
    """Every step counter (the wrappers' and Adam's inside) starts at 2**31 - 2 and stays at 2**31 - 1."""
    tx = wrap(gradtx.adam(1e-2))
    params = {"w": jnp.ones(3)}
    state = _bump(tx.init(params), ("count", "total_notfinite"))
    good, bad = {"w": jnp.ones(3)}, {"w": jnp.full(3, jnp.nan)}
    step = jax.jit(lambda s, g: tx.update(g, s, params))
    stream = [good, good, bad, bad, good, good, good, good] if guarded else [good] * 6
    for g in stream:
        u, state = step(state, g)
        assert np.all(np.isfinite(u["w"]))
    step_counters = {k: v for k, v in _counters(state).items() if "notfinite_count" not in k}
    assert step_counters and all(v == INT32_MAX for v in step_counters.values()), step_counters
    if guarded:  # the consecutive count saturates too (and has given up by then)
        state = _bump(state, ("notfinite_count",))
        for _ in range(2):
            _, state = step(state, bad)
        assert all(v == INT32_MAX for k, v in _counters(state).items() if "notfinite_count" in k)


# ----------------------------------------------------------------------------- checkpoints

CHECKPOINT_CONFIGS = {
    "adam": lambda: gradtx.adam(1e-2),
    "sgd_momentum": lambda: gradtx.sgd(0.1, momentum=0.9, nesterov=True),
    "chain_clip_by_norm": lambda: gradtx.chain(gradtx.clip_by_norm(1.0), gradtx.adamw(1e-2)),
    "partition": lambda: gradtx.partition(
        {"a": gradtx.adam(1e-2), "b": gradtx.rmsprop(1e-2, momentum=0.5)}, LABELS
    ),
    "accumulate": lambda: gradtx.accumulate(gradtx.adagrad(0.1), every_k=3),  # 10 is mid-window
    "apply_if_finite": lambda: gradtx.apply_if_finite(gradtx.sgd(0.1, momentum=0.9), 2),
    "noise": lambda: gradtx.noisy_sgd(0.1, eta=0.1, key=jax.random.key(3)),
    "nested": lambda: gradtx.partition(
        {"a": gradtx.apply_if_finite(gradtx.accumulate(gradtx.adam(1e-2), 2), 3), "b": gradtx.freeze()},
        LABELS,
    ),
}


def _flax_roundtrip(d, tmp_path, abstract):
    from flax import serialization

    return serialization.msgpack_restore(serialization.to_bytes(d))


def _orbax_roundtrip(d, tmp_path, abstract):
    ocp = pytest.importorskip("orbax.checkpoint")
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "ckpt", d)
    checkpointer.wait_until_finished()
    return checkpointer.restore(tmp_path / "ckpt", abstract)


@pytest.mark.parametrize("backend", [_flax_roundtrip, _orbax_roundtrip], ids=["flax", "orbax"])
@pytest.mark.parametrize("config", sorted(CHECKPOINT_CONFIGS))
def test_checkpoint_roundtrip_continues_in_lock_step(config, backend, tmp_path):
    """10 steps, save, restore into a fresh optimizer, 10 more == 20 uninterrupted steps, bit for bit."""
    tx = CHECKPOINT_CONFIGS[config]()
    params0, grads = _params(), _grads(20)
    if config in ("apply_if_finite", "nested"):
        grads = _with_bad_steps(grads, {4, 9, 13})
    uninterrupted, state, _ = _run(tx, params0, grads)

    p, s, _ = _run(tx, params0, grads[:10])
    abstract = gradtx.state_dict(jax.eval_shape(tx.init, params0))
    restored = backend(gradtx.state_dict(s), tmp_path, abstract)
    tx = CHECKPOINT_CONFIGS[config]()  # a fresh, equal optimizer, as after a restart
    s = gradtx.load_state_dict(tx, params0, restored)
    for g in grads[10:]:
        p, s, _ = _jit_step(tx, p, s, g)
    _assert_trees_equal(p, uninterrupted)
    _assert_trees_equal(s, state)


def test_state_dict_keys_are_readable_paths_with_a_version():
    state = gradtx.partition({"a": gradtx.adam(1e-2), "b": gradtx.sgd(0.1)}, {"w": "a", "b": "b"}).init(
        {"w": jnp.ones(2), "b": jnp.ones(3)}
    )
    d = gradtx.state_dict(state)
    assert d["__gradtx_format_version__"] == 1
    assert ".inner_states['a'][0].mu['w']" in d
    assert ".inner_states['a'][0].mu['b']" not in d  # None entries have no key
    assert ".inner_states['b'][0].hyperparams['learning_rate']" in d
    assert all(isinstance(k, str) for k in d)


def test_load_state_dict_errors_name_the_key():
    tx, params = gradtx.sgd(0.1, momentum=0.9), {"w": jnp.ones(2)}
    good = dict(gradtx.state_dict(tx.init(params)))
    key = "[0].trace['w']"
    missing = {k: v for k, v in good.items() if k != key}
    with pytest.raises(ValueError, match=r"missing keys: \[\"\[0\]\.trace\['w'\]\"\]"):
        gradtx.load_state_dict(tx, params, missing)
    with pytest.raises(ValueError, match=r"unexpected keys: \['\[9\]\.extra'\]"):
        gradtx.load_state_dict(tx, params, {**good, "[9].extra": np.zeros(1)})
    with pytest.raises(ValueError, match=r"entry \"\[0\]\.trace\['w'\]\" has shape \(3,\)"):
        gradtx.load_state_dict(tx, params, {**good, key: np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match=r"entry '\[0\]\.count' has shape \(\) and dtype int64"):
        gradtx.load_state_dict(tx, params, {**good, "[0].count": np.zeros((), np.int64)})
    with pytest.raises(ValueError, match="__gradtx_format_version__"):
        gradtx.load_state_dict(tx, params, {k: v for k, v in good.items() if not k.startswith("__")})
    with pytest.raises(ValueError, match="format version 99"):
        gradtx.load_state_dict(tx, params, {**good, "__gradtx_format_version__": np.asarray(99)})


def test_load_state_dict_handles_prng_key_data_raw_and_typed():
    from flax import serialization

    class TypedKeyState(gradtx.GradientTransformation):  # a state holding a typed (new-style) key
        def init(self, params):
            return {"key": jax.random.key(7), "raw": jax.random.key_data(jax.random.key(8))}

        def update(self, updates, state, params=None):
            return updates, state

    for tx in (TypedKeyState(), gradtx.add_noise(0.1, key=jax.random.key(1))):
        state = tx.init(jnp.ones(2))
        restored = serialization.msgpack_restore(serialization.to_bytes(gradtx.state_dict(state)))
        loaded = gradtx.load_state_dict(tx, jnp.ones(2), restored)
        assert jax.tree.structure(loaded) == jax.tree.structure(state)
        for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(state)):
            if jnp.issubdtype(b.dtype, jax.dtypes.prng_key):
                assert jnp.issubdtype(a.dtype, jax.dtypes.prng_key)
                a, b = jax.random.key_data(a), jax.random.key_data(b)
            np.testing.assert_array_equal(a, b)


def _python_blocks(path, sections=None):
    """The ```python blocks of a docs page (of the given ``## `` sections only)."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).resolve().parents[1] / "docs" / path).read_text()
    if sections is not None:
        parts = re.split(r"^## ", text, flags=re.M)
        text = "\n".join(p for p in parts if p.split("\n", 1)[0].strip() in sections)
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_docs_examples_run(tmp_path):
    sections = ("Parameter groups", "Gradient accumulation", "NaN safety")
    blocks = _python_blocks("wrappers.md", sections)
    assert len(blocks) >= 4
    namespace = {}
    for block in blocks:  # the Parameter groups blocks build on each other
        exec(block, namespace)
    blocks = _python_blocks("checkpointing.md")
    assert len(blocks) == 3
    for block in blocks:
        exec(block.replace("/tmp/run", str(tmp_path)), {})
