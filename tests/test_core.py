"""The core contract: chain, named_chain, identity, stateless, apply_updates, gradtx.tree."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx import tree
from tests.helpers import nested_params, to_jax


def test_chain_applies_in_order_and_keeps_a_state_per_transform():
    tx = gradtx.chain(gradtx.scale(2.0), gradtx.clip(1.0), gradtx.scale(3.0))
    state = tx.init(jnp.zeros(2))
    assert isinstance(state, tuple) and len(state) == 3
    updates, _ = tx.update(jnp.array([0.2, 0.9]), state)
    np.testing.assert_allclose(updates, [1.2, 3.0], rtol=1e-6)  # clip after doubling


def test_chain_rejects_a_state_of_another_length():
    tx = gradtx.chain(gradtx.scale(2.0), gradtx.scale(3.0))
    with pytest.raises(ValueError, match="chain of 2 transformations got a state with 1"):
        tx.update(jnp.ones(1), (tx.init(jnp.ones(1))[0],))


def test_named_chain_state_is_keyed_by_name():
    tx = gradtx.named_chain(("clip", gradtx.clip(0.5)), ("lr", gradtx.scale(-1.0)))
    state = tx.init(jnp.zeros(2))
    assert set(state) == {"clip", "lr"}
    updates, state = tx.update(jnp.array([2.0, -0.1]), state)
    np.testing.assert_allclose(updates, [-0.5, 0.1], rtol=1e-6)
    with pytest.raises(ValueError, match="unique"):
        gradtx.named_chain(("a", gradtx.identity()), ("a", gradtx.identity()))


def test_extra_args_reach_every_transform():
    seen = {}

    class Recorder(gradtx.GradientTransformation):
        def init(self, params):
            return gradtx.EmptyState()

        def update(self, updates, state, params=None, **extra_args):
            seen.update(extra_args)
            return updates, state

    tx = gradtx.chain(gradtx.identity(), Recorder())
    tx.update(jnp.ones(1), tx.init(jnp.ones(1)), value=jnp.array(3.0))
    assert float(seen["value"]) == 3.0


def test_identity_and_stateless():
    params = to_jax(nested_params(0), jnp.float32)
    ident = gradtx.identity()
    out, _ = ident.update(params, ident.init(params))
    assert jax.tree.structure(out) == jax.tree.structure(params)
    double = gradtx.stateless(lambda u, p: jax.tree.map(lambda x: 2 * x, u))
    out, _ = double.update(params, double.init(params))
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(params)):
        np.testing.assert_allclose(a, 2 * b)
    with pytest.raises(TypeError, match="callable"):
        gradtx.stateless(3)


def test_apply_updates_keeps_param_dtypes_and_none_leaves():
    params = {"a": jnp.ones(2, jnp.bfloat16), "b": None, "c": jnp.ones(3)}
    updates = {"a": jnp.full(2, 0.5, jnp.float32), "b": None, "c": jnp.full(3, -1.0)}
    out = gradtx.apply_updates(params, updates)
    assert out["a"].dtype == jnp.bfloat16 and out["b"] is None
    np.testing.assert_allclose(out["c"], 0.0)
    with pytest.raises(ValueError, match="different tree structures"):
        gradtx.apply_updates(params, {"a": updates["a"], "c": updates["c"]})


def test_chain_rejects_non_transformations():
    with pytest.raises(TypeError, match="chain argument 1"):
        gradtx.chain(gradtx.identity(), 3.0)


ALIASING_CASES = {
    "sgd_momentum": lambda: gradtx.sgd(0.1, momentum=0.9),
    "adam": lambda: gradtx.adam(),
    "adagrad": lambda: gradtx.adagrad(),
    "rmsprop_centered": lambda: gradtx.rmsprop(centered=True),
    "reduce_on_plateau": lambda: gradtx.reduce_on_plateau(),
    "accumulate": lambda: gradtx.accumulate(gradtx.adam(), 2),
    "apply_if_finite": lambda: gradtx.apply_if_finite(gradtx.adam(), 3),
    "lookahead": lambda: gradtx.lookahead(gradtx.sgd(0.1), 2, 0.5),
    "ema_params": lambda: gradtx.ema_params(gradtx.adam(), 0.9),
    "swa": lambda: gradtx.swa(gradtx.adam(), 1),
    "monitor": lambda: gradtx.monitor(gradtx.adam()),
    "dynamic_loss_scale": lambda: gradtx.dynamic_loss_scale(gradtx.adam()),
}


@pytest.mark.parametrize("name", sorted(ALIASING_CASES))
def test_init_allocates_distinct_buffers(name):
    """No state leaf is a parameter or another state leaf: donating params and state is legal."""
    params = {"w": jnp.zeros(4)}
    leaves = jax.tree.leaves(ALIASING_CASES[name]().init(params))
    ids = [id(leaf) for leaf in leaves]
    assert id(params["w"]) not in ids
    assert len(set(ids)) == len(ids), "two state leaves share one buffer"


def test_abstract_init_matches_concrete_init():
    params = to_jax(nested_params(0), jnp.float32)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    for tx in (gradtx.adam(), gradtx.sgd(0.1, momentum=0.9), gradtx.adadelta(), gradtx.aggmo()):
        concrete_state = tx.init(params)
        abstract_state = jax.eval_shape(tx.init, abstract)
        assert jax.tree.structure(concrete_state) == jax.tree.structure(abstract_state)
        for c, a in zip(jax.tree.leaves(concrete_state), jax.tree.leaves(abstract_state)):
            assert (c.shape, c.dtype) == (a.shape, a.dtype)


class TestTree:
    a = {"x": jnp.array([3.0, -1.0]), "y": (jnp.array(4.0), None)}
    b = {"x": jnp.array([1.0, 2.0]), "y": (jnp.array(-2.0), None)}

    def _np(self, t):
        return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(t)])

    def test_arithmetic(self):
        np.testing.assert_allclose(self._np(tree.add(self.a, self.b)), self._np(self.a) + self._np(self.b))
        np.testing.assert_allclose(self._np(tree.sub(self.a, self.b)), self._np(self.a) - self._np(self.b))
        np.testing.assert_allclose(self._np(tree.mul(self.a, self.b)), self._np(self.a) * self._np(self.b))
        np.testing.assert_allclose(self._np(tree.scale(0.5, self.a)), 0.5 * self._np(self.a))
        np.testing.assert_allclose(
            self._np(tree.add_scaled(self.a, 2.0, self.b)), self._np(self.a) + 2 * self._np(self.b)
        )

    def test_reductions(self):
        va, vb = self._np(self.a), self._np(self.b)
        assert float(tree.vdot(self.a, self.b)) == pytest.approx(va @ vb)
        assert float(tree.sum(self.a)) == pytest.approx(va.sum())
        assert float(tree.norm(self.a)) == pytest.approx(np.linalg.norm(va))
        assert float(tree.norm(self.a, 1)) == pytest.approx(np.abs(va).sum())
        assert float(tree.norm(self.a, jnp.inf)) == pytest.approx(np.abs(va).max())
        assert float(tree.sum_of_squares(self.a)) == pytest.approx(va @ va, rel=1e-6)
        assert tree.size(self.a) == 3
        with pytest.raises(ValueError, match="ord"):
            tree.norm(self.a, 3)

    def test_constructors_and_casts(self):
        z = tree.zeros_like(self.a)
        assert jax.tree.structure(z) == jax.tree.structure(self.a) and float(tree.norm(z)) == 0.0
        assert float(tree.sum(tree.ones_like(self.a))) == 3.0
        assert float(tree.sum(tree.full_like(self.a, 2.0))) == 6.0
        assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(tree.cast(self.a, jnp.bfloat16)))
        assert tree.cast(self.a, None) is self.a
        picked = tree.where(jnp.array(False), self.a, self.b)
        np.testing.assert_allclose(self._np(picked), self._np(self.b))

    def test_all_finite(self):
        assert bool(tree.all_finite(self.a))
        assert not bool(tree.all_finite({"x": jnp.array([1.0, jnp.nan])}))
        assert bool(tree.all_finite({}))

    def test_float16_norm_does_not_overflow(self):
        big = {"x": jnp.full(4, 60000.0, jnp.float16)}
        assert np.isfinite(float(tree.norm(big)))


class TestMakeStep:
    @staticmethod
    def loss(p, x):
        return jnp.sum((p["w"] * x - 1.0) ** 2) + jnp.sum(p["b"] ** 2)

    def test_equals_a_hand_written_loop_and_compiles_once(self):
        tx = gradtx.adam(0.05)
        x = jnp.arange(1.0, 4.0)
        start = {"w": jnp.zeros(3), "b": jnp.ones(2)}
        step = gradtx.make_step(self.loss, tx)
        params, state = jax.tree.map(jnp.copy, start), tx.init(start)
        losses = []
        for _ in range(10):
            params, state, value = step(params, state, x)
            losses.append(float(value))
        manual, mstate = start, tx.init(start)
        for _ in range(10):
            updates, mstate = tx.update(jax.grad(self.loss)(manual, x), mstate, manual)
            manual = gradtx.apply_updates(manual, updates)
        for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(manual)):
            np.testing.assert_allclose(a, b, rtol=1e-6)
        assert losses[-1] < 0.2 * losses[0]
        assert step._cache_size() == 1

    def test_donates_params_and_state(self):
        tx = gradtx.sgd(0.1, momentum=0.9)
        params = {"w": jnp.zeros(3), "b": jnp.zeros(2)}
        state = tx.init(params)
        step = gradtx.make_step(self.loss, tx)
        new_params, new_state, _ = step(params, state, jnp.ones(3))
        if jax.default_backend() == "cpu" and not params["w"].is_deleted():
            pytest.skip("this jax build does not implement donation on CPU")
        assert params["w"].is_deleted() and state[0].trace["w"].is_deleted()
        assert not new_params["w"].is_deleted()

    def test_has_aux_and_the_loss_reaches_loss_aware_transforms(self):
        tx = gradtx.chain(gradtx.sgd(0.1), gradtx.reduce_on_plateau(factor=0.5, patience=0))
        loss = lambda p, x: (jnp.sum(p**2) * 0 + x, {"x": x})  # noqa: E731 - a loss that never improves
        step = gradtx.make_step(loss, tx, has_aux=True)
        params = jnp.ones(2)
        state = tx.init(params)
        for _ in range(3):
            params, state, value, aux = step(params, state, jnp.asarray(1.0))
        assert float(aux["x"]) == 1.0 and float(value) == 1.0
        assert float(gradtx.get_hyperparam(state, "scale")) < 1.0

    def test_rejects_a_non_callable_loss(self):
        with pytest.raises(TypeError, match="loss_fn"):
            gradtx.make_step(3, gradtx.sgd(0.1))
