"""Invalid input fails early, with a message that says what is wrong and where."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

NAN = float("nan")

# (constructor call, message fragment naming the argument); all raise ValueError.
OUT_OF_RANGE = [
    # negative learning rates, for every optimizer that takes one
    (lambda: gradtx.sgd(-0.1), "learning_rate must be in"),
    (lambda: gradtx.adam(-1e-3), "learning_rate must be in"),
    (lambda: gradtx.adamw(-1e-3), "learning_rate must be in"),
    (lambda: gradtx.adamax(-1e-3), "learning_rate must be in"),
    (lambda: gradtx.nadam(-1e-3), "learning_rate must be in"),
    (lambda: gradtx.amsgrad(-1e-3), "learning_rate must be in"),
    (lambda: gradtx.qhadam(-1e-3), "learning_rate must be in"),
    (lambda: gradtx.adagrad(-1e-3), "learning_rate must be in"),
    (lambda: gradtx.rmsprop(-1e-3), "learning_rate must be in"),
    (lambda: gradtx.adadelta(-1.0), "learning_rate must be in"),
    (lambda: gradtx.noisy_sgd(-0.1), "learning_rate must be in"),
    (lambda: gradtx.aggmo(-0.1), "learning_rate must be in"),
    (lambda: gradtx.scale_by_learning_rate(-0.1), "learning_rate must be in"),
    (lambda: gradtx.adam(jnp.asarray(-1e-3, jnp.bfloat16)), "learning_rate must be in"),
    # negative eps / eps_root
    (lambda: gradtx.adam(eps=-1e-8), "eps must be in"),
    (lambda: gradtx.adam(eps_root=-1e-8), "eps_root must be in"),
    (lambda: gradtx.adamax(eps=-1e-8), "eps must be in"),
    (lambda: gradtx.qhadam(eps=-1e-8), "eps must be in"),
    (lambda: gradtx.adagrad(eps=-1e-8), "eps must be in"),
    (lambda: gradtx.rmsprop(eps=-1e-8), "eps must be in"),
    (lambda: gradtx.adadelta(eps=-1e-8), "eps must be in"),
    (lambda: gradtx.scale_by_adam(eps=-1e-8), "eps must be in"),
    (lambda: gradtx.scale_by_rms(eps=-1e-8), "eps must be in"),
    # negative weight decay
    (lambda: gradtx.sgd(0.1, weight_decay=-1e-4), "weight_decay must be in"),
    (lambda: gradtx.adam(weight_decay=-1e-4), "weight_decay must be in"),
    (lambda: gradtx.adamw(weight_decay=-1e-4), "weight_decay must be in"),
    (lambda: gradtx.adagrad(weight_decay=-1e-4), "weight_decay must be in"),
    (lambda: gradtx.rmsprop(weight_decay=-1e-4), "weight_decay must be in"),
    (lambda: gradtx.aggmo(weight_decay=-1e-4), "weight_decay must be in"),
    (lambda: gradtx.add_decayed_weights(-1e-4), "weight_decay must be in"),
    # negative clipping thresholds and noise
    (lambda: gradtx.clip_by_norm(-1.0), "max_norm must be in"),
    (lambda: gradtx.clip_by_block_norm(-1.0), "max_norm must be in"),
    (lambda: gradtx.clip(-1.0), "max_delta must be in"),
    (lambda: gradtx.add_noise(eta=-0.01), "eta must be in"),
    (lambda: gradtx.noisy_sgd(0.1, eta=-0.01), "eta must be in"),
    (lambda: gradtx.add_noise(gamma=-0.55), "gamma must be in"),
    (lambda: gradtx.adagrad(initial_accumulator_value=-1.0), "initial_accumulator_value must be in"),
    (lambda: gradtx.rmsprop(initial_scale=-1.0), "initial_scale must be in"),
    # decay rates outside [0, 1)
    (lambda: gradtx.adam(b1=1.0), r"b1 must be in \[0.0, 1.0\), got 1.0"),
    (lambda: gradtx.adam(b2=-0.1), r"b2 must be in \[0.0, 1.0\), got -0.1"),
    (lambda: gradtx.adamax(b2=1.0), "b2 must be in"),
    (lambda: gradtx.qhadam(b1=1.0), "b1 must be in"),
    (lambda: gradtx.scale_by_adam(b1=1.0), "b1 must be in"),
    (lambda: gradtx.rmsprop(decay=1.0), r"decay must be in \[0.0, 1.0\)"),
    (lambda: gradtx.scale_by_rms(decay=1.0), "decay must be in"),
    (lambda: gradtx.adadelta(rho=1.5), r"rho must be in \[0.0, 1.0\), got 1.5"),
    (lambda: gradtx.sgd(0.1, momentum=-0.1), r"momentum must be in \[0.0, 1.0\), got -0.1"),
    (lambda: gradtx.sgd(0.1, momentum=1.0), r"momentum must be in \[0.0, 1.0\), got 1.0"),
    (lambda: gradtx.rmsprop(momentum=-0.1), "momentum must be in"),
    (lambda: gradtx.rmsprop(momentum=1.0), "momentum must be in"),
    (lambda: gradtx.add_momentum(1.0), "decay must be in"),  # add_momentum's argument is `decay`
    (lambda: gradtx.sgd(0.1, momentum=0.9, dampening=1.5), "dampening must be in"),
    (lambda: gradtx.aggmo(betas=(0.5, 1.0)), r"betas\[1\] must be in"),
    (lambda: gradtx.scale_by_aggmo((-0.1,)), r"betas\[0\] must be in"),
    # QHAdam's nu's live in the closed interval [0, 1]
    (lambda: gradtx.qhadam(nu1=1.5), r"nu1 must be in \[0.0, 1.0\], got 1.5"),
    (lambda: gradtx.qhadam(nu1=-0.1), "nu1 must be in"),
    (lambda: gradtx.scale_by_qhadam(nu2=1.1), "nu2 must be in"),
    # NaN anywhere
    (lambda: gradtx.adam(NAN), "learning_rate must not be NaN"),
    (lambda: gradtx.adam(np.float32(NAN)), "learning_rate must not be NaN"),
    (lambda: gradtx.adam(jnp.asarray(NAN, jnp.bfloat16)), "learning_rate must not be NaN"),
    (lambda: gradtx.sgd(NAN), "learning_rate must not be NaN"),
    (lambda: gradtx.adam(b1=NAN), "b1 must not be NaN"),
    (lambda: gradtx.adam(b2=jnp.nan), "b2 must not be NaN"),
    (lambda: gradtx.adam(eps=NAN), "eps must not be NaN"),
    (lambda: gradtx.adamw(weight_decay=NAN), "weight_decay must not be NaN"),
    (lambda: gradtx.sgd(0.1, momentum=NAN), "momentum must not be NaN"),
    (lambda: gradtx.rmsprop(decay=NAN), "decay must not be NaN"),
    (lambda: gradtx.adadelta(rho=NAN), "rho must not be NaN"),
    (lambda: gradtx.qhadam(nu1=NAN), "nu1 must not be NaN"),
    (lambda: gradtx.clip_by_norm(NAN), "max_norm must not be NaN"),
    (lambda: gradtx.clip(NAN), "max_delta must not be NaN"),
    (lambda: gradtx.scale(NAN), "step_size must not be NaN"),
    (lambda: gradtx.noisy_sgd(0.1, eta=NAN), "eta must not be NaN"),
    (lambda: gradtx.aggmo(betas=(0.9, NAN)), r"betas\[1\] must not be NaN"),
    # inconsistent options
    (lambda: gradtx.sgd(0.1, nesterov=True), "nesterov=True needs momentum > 0"),
    (lambda: gradtx.sgd(0.1, momentum=0.0, nesterov=True), "nesterov=True needs momentum > 0"),
    (lambda: gradtx.rmsprop(0.1, nesterov=True), "nesterov=True needs momentum > 0"),
    (
        lambda: gradtx.sgd(0.1, momentum=0.9, nesterov=True, dampening=0.1),
        "nesterov=True needs dampening == 0",
    ),
    (lambda: gradtx.aggmo(0.1, betas=()), "betas must hold at least one"),
    (lambda: gradtx.scale_by_aggmo(()), "betas must hold at least one"),
]


@pytest.mark.parametrize("make,message", OUT_OF_RANGE, ids=[str(i) for i in range(len(OUT_OF_RANGE))])
def test_invalid_hyperparameter_raises_value_error_naming_it(make, message):
    with pytest.raises(ValueError, match=message):
        make()


NOT_A_SCALAR = [
    (lambda: gradtx.adam(jnp.ones(2)), "learning_rate must be a scalar or a schedule, got shape (2,)"),
    (lambda: gradtx.sgd([0.1, 0.2]), "learning_rate must be a scalar or a schedule, got shape (2,)"),
    (lambda: gradtx.adam(b1=np.array([0.9, 0.9])), "b1 must be a scalar"),
    (lambda: gradtx.sgd(0.1, momentum=jnp.full((1,), 0.9)), "momentum must be a scalar"),
    (lambda: gradtx.clip_by_norm(jnp.ones(3)), "max_norm must be a scalar"),
    (lambda: gradtx.scale(np.ones((2, 2))), "step_size must be a scalar"),
    (lambda: gradtx.qhadam(nu1=[0.7]), "nu1 must be a scalar"),
    (lambda: gradtx.sgd("0.1"), "learning_rate must be a real number or a schedule"),
    (lambda: gradtx.adam(None), "learning_rate must be a real number or a schedule"),
    (lambda: gradtx.adam(b2=1 + 2j), "b2 must be a real number"),
    (lambda: gradtx.add_noise(eta="high"), "eta must be a real number"),
]


@pytest.mark.parametrize("make,message", NOT_A_SCALAR, ids=[str(i) for i in range(len(NOT_A_SCALAR))])
def test_non_scalar_hyperparameter_raises_type_error(make, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        make()


VALID_EDGES = [
    lambda: gradtx.sgd(0.0),
    lambda: gradtx.sgd(0.1, momentum=0.0),
    lambda: gradtx.sgd(0.1, momentum=0.9, dampening=1.0),
    lambda: gradtx.adam(b1=0.0, b2=0.0, eps=0.0),
    lambda: gradtx.qhadam(nu1=0.0, nu2=1.0),
    lambda: gradtx.qhadam(nu1=1.0, nu2=0.0),
    lambda: gradtx.clip_by_norm(0.0),
    lambda: gradtx.clip(0.0),
    lambda: gradtx.add_noise(eta=0.0, gamma=0.0),
    lambda: gradtx.aggmo(betas=(0.0,)),
    lambda: gradtx.scale(-3.0),  # scale takes any sign
    lambda: gradtx.adam(jnp.asarray(1e-3, jnp.bfloat16)),
    lambda: gradtx.adam(np.float16(1e-3), b1=jnp.float32(0.9)),
    lambda: gradtx.adam(lambda step: 1e-3 * 0.5**step),  # a schedule is not range-checked
]


@pytest.mark.parametrize("make", VALID_EDGES, ids=[str(i) for i in range(len(VALID_EDGES))])
def test_boundary_values_are_accepted(make):
    tx = make()
    params = {"w": jnp.ones(2)}
    updates, _ = tx.update({"w": jnp.ones(2)}, tx.init(params), params)
    assert updates["w"].shape == (2,)


def test_traced_hyperparameters_are_not_checked_and_do_not_fail():
    """Under jit/vmap the values are unknown at construction: no error, and they are used."""

    def lr_in_state(lr, b1):
        return gradtx.get_hyperparam(gradtx.adam(lr, b1=b1).init(jnp.zeros(2)), "learning_rate")

    assert float(jax.jit(lr_in_state)(0.25, 0.9)) == 0.25
    np.testing.assert_allclose(
        jax.vmap(lr_in_state)(jnp.array([0.1, 0.2]), jnp.array([0.8, 0.9])), [0.1, 0.2]
    )


# ---------------------------------------------------------------------------
# Composition errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,exc,message",
    [
        (lambda: gradtx.chain(1.0), TypeError, "chain argument 0 must be a gradient transformation"),
        (lambda: gradtx.chain(gradtx.sgd(0.1), "adam"), TypeError, "chain argument 1 must be a gradient"),
        (
            lambda: gradtx.chain(gradtx.sgd),
            TypeError,
            "chain argument 0",
        ),  # the factory, not a transformation
        (
            lambda: gradtx.named_chain(
                ("opt", gradtx.sgd(0.1)), ("clip", gradtx.clip(1.0)), ("opt", gradtx.adam())
            ),
            ValueError,
            "named_chain names must be unique, got ('opt', 'clip', 'opt')",
        ),
        (lambda: gradtx.named_chain((0, gradtx.identity())), TypeError, "named_chain names must be strings"),
        (lambda: gradtx.named_chain(("a", 1.0)), TypeError, "named_chain entry 'a' must be a gradient"),
        (lambda: gradtx.stateless(1.0), TypeError, "stateless: fn must be callable"),
    ],
)
def test_composition_errors(make, exc, message):
    with pytest.raises(exc, match=re.escape(message)):
        make()


def test_named_chain_rejects_a_state_missing_an_entry():
    tx = gradtx.named_chain(("clip", gradtx.clip(1.0)), ("opt", gradtx.sgd(0.1)))
    state = tx.init(jnp.zeros(2))
    del state["opt"]
    with pytest.raises(ValueError, match=re.escape("named_chain state lacks entries ['opt']")):
        tx.update(jnp.zeros(2), state)


# ---------------------------------------------------------------------------
# Gradients whose structure differs from the state's
# ---------------------------------------------------------------------------

PARAMS = {"w": jnp.ones(3), "b": {"x": jnp.ones(2)}}

STATEFUL = {
    "sgd_momentum": (lambda: gradtx.sgd(0.1, momentum=0.9), "state.trace"),
    "adam": (lambda: gradtx.adam(), "state.mu"),
    "adamw": (lambda: gradtx.adamw(), "state.mu"),
    "amsgrad": (lambda: gradtx.amsgrad(), "state.mu"),
    "adamax": (lambda: gradtx.adamax(), "state.mu"),
    "qhadam": (lambda: gradtx.qhadam(), "state.mu"),
    "adagrad": (lambda: gradtx.adagrad(), "state.sum_of_squares"),
    "rmsprop_centered": (lambda: gradtx.rmsprop(centered=True), "state.nu"),
    "adadelta": (lambda: gradtx.adadelta(), "state.e_g"),
    "aggmo": (lambda: gradtx.aggmo(), "state.velocities[0]"),
}

# name: (bad gradients, paths only in the gradients, paths only in the state)
BAD_TREES = {
    "missing_key": ({"w": jnp.ones(3), "b": {}}, [], ["['b']['x']"]),
    "extra_key": ({"w": jnp.ones(3), "b": {"x": jnp.ones(2), "y": jnp.ones(1)}}, ["['b']['y']"], []),
    "renamed_key": ({"w": jnp.ones(3), "b": {"z": jnp.ones(2)}}, ["['b']['z']"], ["['b']['x']"]),
    "list_not_dict": ([jnp.ones(3), jnp.ones(2)], ["[0]", "[1]"], ["['b']['x']", "['w']"]),
}


@pytest.mark.parametrize("case", list(BAD_TREES))
@pytest.mark.parametrize("name", list(STATEFUL))
def test_mismatched_gradient_tree_is_reported(name, case):
    make, state_name = STATEFUL[name]
    tx = make()
    state = tx.init(PARAMS)
    grads, only_grads, only_state = BAD_TREES[case]
    with pytest.raises(
        ValueError, match=f"updates and {re.escape(state_name)} have different tree structures"
    ) as err:
        tx.update(grads, state, PARAMS)
    message = str(err.value)
    # both structures, in full
    assert f"updates: {jax.tree.structure(grads)}" in message
    assert f"{state_name}: {jax.tree.structure(PARAMS)}" in message
    # and the paths that differ
    assert f"paths only in updates: {only_grads or 'none'}" in message
    assert f"paths only in {state_name}: {only_state or 'none'}" in message


@pytest.mark.parametrize("name", list(STATEFUL))
def test_mismatched_leaf_shape_is_reported(name):
    make, state_name = STATEFUL[name]
    tx = make()
    grads = {"w": jnp.ones(4), "b": {"x": jnp.ones(2)}}
    expected = f"leaf ['w'] has shape (4,) in updates but (3,) in {state_name}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        tx.update(grads, tx.init(PARAMS), PARAMS)


def test_mismatch_is_reported_at_trace_time_under_jit():
    tx = gradtx.adam()
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match=re.escape("paths only in state.mu: [\"['b']['x']\"]")):
        jax.jit(tx.update)(BAD_TREES["missing_key"][0], state, PARAMS)


def test_none_leaf_in_gradients_where_state_has_an_array():
    tx = gradtx.adam()
    grads = {"w": jnp.ones(3), "b": {"x": None}}
    with pytest.raises(ValueError, match=re.escape("paths only in state.mu: [\"['b']['x']\"]")):
        tx.update(grads, tx.init(PARAMS), PARAMS)


def test_stateless_optimizer_mismatch_is_caught_by_apply_updates():
    """Plain SGD keeps no per-parameter state; apply_updates still catches the mismatch."""
    tx = gradtx.sgd(0.1)
    grads = BAD_TREES["extra_key"][0]
    updates, _ = tx.update(grads, tx.init(PARAMS), PARAMS)
    with pytest.raises(ValueError, match=re.escape("paths only in updates: [\"['b']['y']\"]")):
        gradtx.apply_updates(PARAMS, updates)
    wrong_shape = {"w": jnp.ones(4), "b": {"x": jnp.ones(2)}}
    with pytest.raises(
        ValueError, match=re.escape("leaf ['w'] has shape (3,) in params but (4,) in updates")
    ):
        gradtx.apply_updates(PARAMS, wrong_shape)


def test_weight_decay_checks_updates_against_params():
    tx = gradtx.add_decayed_weights(1e-2)
    with pytest.raises(ValueError, match=re.escape("paths only in params: [\"['b']['x']\"]")):
        tx.update({"w": jnp.ones(3), "b": {}}, tx.init(PARAMS), PARAMS)
    with pytest.raises(ValueError, match="add_decayed_weights needs `params`"):
        tx.update(PARAMS, tx.init(PARAMS))


def test_weight_decay_mask_with_wrong_structure():
    tx = gradtx.adamw(weight_decay=1e-2, mask={"w": True})
    with pytest.raises(ValueError, match=re.escape("params and mask have different tree structures")):
        tx.update(PARAMS, tx.init(PARAMS), PARAMS)
