"""One entry per public transformation: what the generic conformance tests need to know about it.

An :class:`Entry` says how to build the transformation (a typical configuration
first, then non-default ones), what its ``update`` needs (params, the loss
value), whether it accepts complex parameters, which bad arguments it must
reject and with what message, and any tolerance it needs with the reason.

The conformance tests (``tests/test_conformance_*.py``) iterate over
:data:`REGISTRY`, so a transformation added here gets the whole battery, and
``test_registry_covers_every_public_transformation`` fails while a public
constructor that returns a :class:`gradtx.GradientTransformation` is missing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

import gradtx
from gradtx import schedules

Config = Callable[[], Any]


@dataclasses.dataclass(frozen=True)
class Bad:
    """A constructor call that must raise ``error`` with a message matching ``match`` (a regex)."""

    build: Callable[[], Any]
    match: str
    error: type[Exception] = ValueError


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str  # the public name, gradtx.<name>
    configs: tuple[Config, ...]  # typical first, then non-default arguments
    kind: str  # "optimizer", "transform", "wrapper" or "combinator"
    needs_params: bool = False  # the typical configuration's update(updates, state) without params raises
    needs_value: bool = False  # update needs value= (and, for line searches, grad= and value_fn=)
    complex: bool = True  # False: complex parameters raise a TypeError that says "complex"
    matrices_only: bool = False  # every leaf must be 2-D
    bad: tuple[Bad, ...] = ()
    rtol: float = 1e-5  # jit vs eager and vmap vs loop, float32: a few ulps of fusion differences
    rtol_reason: str = ""
    low_precision_rtol: float = 2e-2  # float16/bfloat16 leaves vs the same run upcast to float32
    low_precision_reason: str = ""


def _lr(name: str) -> Bad:
    return Bad(lambda: getattr(gradtx, name)(-1e-3), "learning_rate must be in")


def _nan(build: Callable[[float], Any], arg: str) -> Bad:
    return Bad(lambda: build(float("nan")), f"{arg} must not be NaN")


def _range(build: Callable[[], Any], arg: str) -> Bad:
    return Bad(build, f"{arg} must be in")


_ITERATE_DIFFERENCE = (
    "the update is the difference of two iterates held in the parameter dtype, so it carries the "
    "parameters' own rounding (half an ulp of |y|, 0.4% of |y| in bfloat16), which is comparable to lr*g; "
    "optax's schedule-free has the same property (state_dtype=float32 keeps z exact, not y)"
)

ADAM = gradtx.adam(1e-2)
SGD = gradtx.sgd(0.1, momentum=0.9)

_OPTIMIZERS = [
    Entry(
        "sgd",
        (
            lambda: gradtx.sgd(0.1),
            lambda: gradtx.sgd(0.05, momentum=0.9, nesterov=True, weight_decay=1e-2),
            lambda: gradtx.sgd(schedules.cosine_decay(0.1, 10), momentum=0.5, dampening=0.1),
        ),
        "optimizer",
        bad=(
            _lr("sgd"),
            _range(lambda: gradtx.sgd(0.1, momentum=1.5), "momentum"),
            Bad(lambda: gradtx.sgd(0.1, nesterov=True), "nesterov"),
            _nan(lambda v: gradtx.sgd(v), "learning_rate"),
        ),
    ),
    Entry(
        "noisy_sgd",
        (lambda: gradtx.noisy_sgd(0.1), lambda: gradtx.noisy_sgd(0.05, eta=0.1, gamma=0.6, key=3)),
        "optimizer",
        complex=False,
        bad=(_lr("noisy_sgd"), _range(lambda: gradtx.noisy_sgd(0.1, eta=-1.0), "eta")),
    ),
    Entry(
        "aggmo",
        (lambda: gradtx.aggmo(0.1), lambda: gradtx.aggmo(0.05, betas=(0.5, 0.99), weight_decay=1e-3)),
        "optimizer",
        bad=(_lr("aggmo"), _range(lambda: gradtx.aggmo(0.1, betas=(0.5, 1.5)), r"betas\[1\]")),
    ),
    Entry(
        "adagrad",
        (
            lambda: gradtx.adagrad(0.1),
            lambda: gradtx.adagrad(0.1, initial_accumulator_value=0.1, eps=1e-6),
            lambda: gradtx.adagrad(0.1, nu_dtype=jnp.bfloat16),
        ),
        "optimizer",
        bad=(
            _lr("adagrad"),
            _range(lambda: gradtx.adagrad(eps=-1.0), "eps"),
            Bad(lambda: gradtx.adagrad(nu_dtype="uint8"), "nu_dtype='uint8' asks for 8-bit state"),
        ),
    ),
    Entry(
        "rmsprop",
        (
            lambda: gradtx.rmsprop(1e-2),
            lambda: gradtx.rmsprop(1e-2, centered=True, momentum=0.9, nesterov=True, eps_in_sqrt=False),
            lambda: gradtx.rmsprop(
                1e-2, centered=True, momentum=0.9, nu_dtype=jnp.bfloat16, mu_dtype=jnp.bfloat16
            ),
        ),
        "optimizer",
        bad=(
            _lr("rmsprop"),
            _range(lambda: gradtx.rmsprop(decay=1.0), "decay"),
            Bad(lambda: gradtx.rmsprop(mu_dtype=jnp.int32), "mu_dtype must be None, a floating dtype"),
        ),
    ),
    Entry(
        "adadelta",
        (
            lambda: gradtx.adadelta(1.0),
            lambda: gradtx.adadelta(0.5, rho=0.95, weight_decay=1e-3),
            lambda: gradtx.adadelta(1.0, nu_dtype=jnp.bfloat16),
        ),
        "optimizer",
        bad=(_lr("adadelta"), _range(lambda: gradtx.adadelta(rho=-0.1), "rho")),
    ),
    Entry(
        "adam",
        (
            lambda: gradtx.adam(1e-2),
            lambda: gradtx.adam(1e-2, b1=0.5, b2=0.9, eps_root=1e-8, amsgrad=True, weight_decay=1e-3),
            lambda: gradtx.adam(1e-2, nesterov=True, mu_dtype=jnp.bfloat16),
            lambda: gradtx.adam(1e-2, mu_dtype="int8", nu_dtype="uint8"),
        ),
        "optimizer",
        bad=(
            _lr("adam"),
            _range(lambda: gradtx.adam(b1=1.0), "b1"),
            _range(lambda: gradtx.adam(b2=-0.5), "b2"),
            _nan(lambda v: gradtx.adam(eps=v), "eps"),
            Bad(lambda: gradtx.adam(mu_dtype="int4"), "mu_dtype"),
        ),
    ),
    Entry(
        "adamw",
        (lambda: gradtx.adamw(1e-2), lambda: gradtx.adamw(1e-2, weight_decay=0.1, mask=lambda p: p)),
        "optimizer",
        bad=(_lr("adamw"), _range(lambda: gradtx.adamw(weight_decay=-1.0), "weight_decay")),
    ),
    Entry(
        "adamax",
        (lambda: gradtx.adamax(1e-2), lambda: gradtx.adamax(1e-2, b1=0.5, weight_decay=1e-3)),
        "optimizer",
        bad=(_lr("adamax"), _range(lambda: gradtx.adamax(b2=1.5), "b2")),
    ),
    Entry(
        "nadam",
        (lambda: gradtx.nadam(1e-2), lambda: gradtx.nadam(1e-2, b1=0.8, eps_root=1e-8)),
        "optimizer",
        bad=(_lr("nadam"), _range(lambda: gradtx.nadam(b1=-0.1), "b1")),
    ),
    Entry(
        "amsgrad",
        (lambda: gradtx.amsgrad(1e-2), lambda: gradtx.amsgrad(1e-2, b2=0.99, weight_decay=1e-3)),
        "optimizer",
        bad=(_lr("amsgrad"),),
    ),
    Entry(
        "qhadam",
        (lambda: gradtx.qhadam(1e-2), lambda: gradtx.qhadam(1e-2, nu1=0.5, nu2=0.9)),
        "optimizer",
        bad=(_lr("qhadam"), _range(lambda: gradtx.qhadam(nu1=1.5), "nu1")),
    ),
    Entry(
        "adabelief",
        (lambda: gradtx.adabelief(1e-2), lambda: gradtx.adabelief(1e-2, b1=0.8, weight_decay=1e-2)),
        "optimizer",
        bad=(_lr("adabelief"),),
    ),
    Entry(
        "radam",
        (lambda: gradtx.radam(1e-2), lambda: gradtx.radam(1e-2, threshold=4.0, weight_decay=1e-3)),
        "optimizer",
        bad=(_lr("radam"), _range(lambda: gradtx.radam(b2=1.0), "b2")),
    ),
    Entry(
        "yogi",
        (lambda: gradtx.yogi(1e-2), lambda: gradtx.yogi(1e-2, initial_accumulator_value=0.1, eps=1e-4)),
        "optimizer",
        bad=(_lr("yogi"),),
    ),
    Entry(
        "lamb",
        (lambda: gradtx.lamb(1e-2), lambda: gradtx.lamb(1e-2, weight_decay=1e-2, eps_root=1e-8)),
        "optimizer",
        needs_params=True,
        bad=(_lr("lamb"),),
    ),
    Entry(
        "lars",
        (lambda: gradtx.lars(0.1), lambda: gradtx.lars(0.1, weight_decay=1e-3, nesterov=True, eps=1e-8)),
        "optimizer",
        needs_params=True,
        bad=(_lr("lars"), _range(lambda: gradtx.lars(0.1, momentum=1.0), "momentum")),
    ),
    Entry(
        "novograd",
        (lambda: gradtx.novograd(1e-2), lambda: gradtx.novograd(1e-2, b2=0.5, weight_decay=1e-3)),
        "optimizer",
        bad=(_lr("novograd"),),
    ),
    Entry(
        "fromage",
        (lambda: gradtx.fromage(1e-2), lambda: gradtx.fromage(1e-2, min_norm=1e-3)),
        "optimizer",
        needs_params=True,
        bad=(_lr("fromage"),),
    ),
    Entry(
        "sm3",
        (lambda: gradtx.sm3(0.1), lambda: gradtx.sm3(0.1, b1=0.0, b2=0.9)),
        "optimizer",
        complex=False,
        bad=(_lr("sm3"),),
    ),
    Entry(
        "adafactor",
        (
            lambda: gradtx.adafactor(),
            lambda: gradtx.adafactor(1e-2, min_dim_size_to_factor=2, multiply_by_parameter_scale=False),
        ),
        "optimizer",
        needs_params=True,
        complex=False,
        bad=(_range(lambda: gradtx.adafactor(decay_rate=-1.0), "decay_rate"),),
    ),
    Entry(
        "lbfgs",
        (lambda: gradtx.lbfgs(), lambda: gradtx.lbfgs(memory_size=3, scale_init_precond=False)),
        "optimizer",
        needs_params=True,
        needs_value=True,
        complex=False,
        bad=(Bad(lambda: gradtx.lbfgs(memory_size=0), "memory_size"),),
        rtol=1e-4,
        rtol_reason="the zoom line search branches on float32 comparisons, which XLA may fuse differently",
    ),
    Entry(
        "adan",
        (lambda: gradtx.adan(1e-2), lambda: gradtx.adan(1e-2, b2=0.5, weight_decay=1e-2)),
        "optimizer",
        bad=(_lr("adan"),),
    ),
    Entry(
        "ademamix",
        (lambda: gradtx.ademamix(1e-2), lambda: gradtx.ademamix(1e-2, alpha=2.0, b3=0.99)),
        "optimizer",
        bad=(_lr("ademamix"),),
    ),
    Entry(
        "adopt",
        (lambda: gradtx.adopt(1e-2), lambda: gradtx.adopt(1e-2, nesterov=True, use_clipping=False)),
        "optimizer",
        bad=(_lr("adopt"),),
    ),
    Entry(
        "rprop",
        (lambda: gradtx.rprop(1e-2), lambda: gradtx.rprop(1e-2, etas=(0.3, 1.5), step_sizes=(1e-4, 1.0))),
        "optimizer",
        complex=False,
        bad=(_lr("rprop"),),
    ),
    Entry(
        "muon",
        (lambda: gradtx.muon(1e-2), lambda: gradtx.muon(1e-2, ns_steps=3, beta=0.9, weight_decay=1e-2)),
        "optimizer",
        complex=False,
        bad=(_lr("muon"),),
        rtol=1e-4,
        rtol_reason="five Newton-Schulz matrix products amplify float32 rounding differences",
    ),
    Entry(
        "prodigy",
        (
            lambda: gradtx.prodigy(),
            lambda: gradtx.prodigy(0.5, d0=1e-3, weight_decay=1e-3),
            lambda: gradtx.prodigy(mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16),
        ),
        "optimizer",
        needs_params=True,
        complex=False,
        bad=(_lr("prodigy"), Bad(lambda: gradtx.prodigy(nu_dtype="uint8"), "asks for 8-bit state")),
    ),
    Entry(
        "schedule_free_sgd",
        (lambda: gradtx.schedule_free_sgd(0.1), lambda: gradtx.schedule_free_sgd(0.1, warmup_steps=3)),
        "optimizer",
        needs_params=True,
        bad=(_lr("schedule_free_sgd"),),
        low_precision_rtol=0.15,
        low_precision_reason=_ITERATE_DIFFERENCE,
    ),
    Entry(
        "schedule_free_adamw",
        (
            lambda: gradtx.schedule_free_adamw(1e-2),
            lambda: gradtx.schedule_free_adamw(1e-2, warmup_steps=3, weight_decay=1e-2),
        ),
        "optimizer",
        needs_params=True,
        bad=(_lr("schedule_free_adamw"),),
        low_precision_rtol=1.0,
        low_precision_reason=_ITERATE_DIFFERENCE,
    ),
    Entry(
        "lion",
        (lambda: gradtx.lion(1e-3), lambda: gradtx.lion(1e-3, b1=0.95, weight_decay=0.0)),
        "optimizer",
        complex=False,
        bad=(_lr("lion"),),
    ),
    Entry("sign_sgd", (lambda: gradtx.sign_sgd(1e-2),), "optimizer", complex=False, bad=(_lr("sign_sgd"),)),
    Entry(
        "signum",
        (lambda: gradtx.signum(1e-2), lambda: gradtx.signum(1e-2, beta=0.5)),
        "optimizer",
        complex=False,
        bad=(_lr("signum"),),
    ),
]

_TRANSFORMS = [
    Entry(
        "scale_by_adam",
        (lambda: gradtx.scale_by_adam(), lambda: gradtx.scale_by_adam(0.5, 0.9, nesterov=True)),
        "transform",
        bad=(_range(lambda: gradtx.scale_by_adam(b1=2.0), "b1"),),
    ),
    Entry("scale_by_adamax", (lambda: gradtx.scale_by_adamax(),), "transform"),
    Entry("scale_by_qhadam", (lambda: gradtx.scale_by_qhadam(),), "transform"),
    Entry("scale_by_belief", (lambda: gradtx.scale_by_belief(),), "transform"),
    Entry("scale_by_radam", (lambda: gradtx.scale_by_radam(),), "transform"),
    Entry("scale_by_yogi", (lambda: gradtx.scale_by_yogi(),), "transform"),
    Entry("scale_by_adadelta", (lambda: gradtx.scale_by_adadelta(),), "transform"),
    Entry("scale_by_adagrad", (lambda: gradtx.scale_by_adagrad(),), "transform"),
    Entry(
        "scale_by_rms",
        (lambda: gradtx.scale_by_rms(), lambda: gradtx.scale_by_rms(centered=True, initial_scale=1.0)),
        "transform",
        bad=(_range(lambda: gradtx.scale_by_rms(decay=1.5), "decay"),),
    ),
    Entry(
        "clip",
        (lambda: gradtx.clip(0.5),),
        "transform",
        complex=False,
        bad=(_range(lambda: gradtx.clip(-1.0), "max_delta"),),
    ),
    Entry(
        "clip_by_block_norm",
        (lambda: gradtx.clip_by_block_norm(0.5),),
        "transform",
        bad=(_range(lambda: gradtx.clip_by_block_norm(-1.0), "max_norm"),),
    ),
    Entry(
        "clip_by_norm",
        (lambda: gradtx.clip_by_norm(0.5), lambda: gradtx.clip_by_norm(0.0)),
        "transform",
        bad=(_range(lambda: gradtx.clip_by_norm(-1.0), "max_norm"), _nan(gradtx.clip_by_norm, "max_norm")),
    ),
    Entry(
        "scale_by_factored_rms",
        (
            lambda: gradtx.scale_by_factored_rms(),
            lambda: gradtx.scale_by_factored_rms(min_dim_size_to_factor=2),
        ),
        "transform",
        complex=False,
    ),
    Entry("scale_by_novograd", (lambda: gradtx.scale_by_novograd(),), "transform"),
    Entry("scale_by_sm3", (lambda: gradtx.scale_by_sm3(),), "transform", complex=False),
    Entry(
        "scale_by_trust_ratio",
        (lambda: gradtx.scale_by_trust_ratio(), lambda: gradtx.scale_by_trust_ratio(trust_coefficient=0.1)),
        "transform",
        needs_params=True,
    ),
    Entry(
        "scale_by_lbfgs",
        (lambda: gradtx.scale_by_lbfgs(), lambda: gradtx.scale_by_lbfgs(memory_size=2)),
        "transform",
        needs_params=True,
        complex=False,
        bad=(Bad(lambda: gradtx.scale_by_lbfgs(memory_size=0), "memory_size"),),
    ),
    Entry(
        "scale_by_zoom_linesearch",
        # The line search needs a descent direction: it follows the negative gradient, as in lbfgs's chain.
        (lambda: gradtx.chain(gradtx.scale(-1.0), gradtx.scale_by_zoom_linesearch(10)),),
        "transform",
        needs_params=True,
        needs_value=True,
        complex=False,
        rtol=1e-4,
        rtol_reason="the zoom line search branches on float32 comparisons, which XLA may fuse differently",
    ),
    Entry("scale_by_adan", (lambda: gradtx.scale_by_adan(),), "transform"),
    Entry("scale_by_rprop", (lambda: gradtx.scale_by_rprop(),), "transform", complex=False),
    Entry(
        "add_momentum",
        (lambda: gradtx.add_momentum(), lambda: gradtx.add_momentum(0.5, nesterov=True)),
        "transform",
        bad=(_range(lambda: gradtx.add_momentum(1.0), "decay"),),
    ),
    Entry("scale_by_aggmo", (lambda: gradtx.scale_by_aggmo(),), "transform"),
    Entry(
        "scale_by_muon",
        (lambda: gradtx.scale_by_muon(), lambda: gradtx.scale_by_muon(adaptive=True, nesterov=False)),
        "transform",
        complex=False,
        matrices_only=True,
        rtol=1e-4,
        rtol_reason="five Newton-Schulz matrix products amplify float32 rounding differences",
        low_precision_rtol=5e-2,
        low_precision_reason="five Newton-Schulz matrix products amplify the input's bfloat16 rounding",
    ),
    Entry(
        "add_noise",
        (lambda: gradtx.add_noise(), lambda: gradtx.add_noise(0.1, 0.0, key=7)),
        "transform",
        complex=False,
        bad=(_range(lambda: gradtx.add_noise(eta=-1.0), "eta"),),
    ),
    Entry(
        "scale",
        (lambda: gradtx.scale(0.5), lambda: gradtx.scale(-2.0)),
        "transform",
        bad=(_nan(gradtx.scale, "step_size"),),
    ),
    Entry(
        "scale_by_learning_rate",
        (
            lambda: gradtx.scale_by_learning_rate(0.1),
            lambda: gradtx.scale_by_learning_rate(0.1, flip_sign=False),
        ),
        "transform",
        bad=(_range(lambda: gradtx.scale_by_learning_rate(-0.1), "learning_rate"),),
    ),
    Entry("scale_by_lion", (lambda: gradtx.scale_by_lion(),), "transform", complex=False),
    Entry("scale_by_sign", (lambda: gradtx.scale_by_sign(),), "transform", complex=False),
    Entry("scale_by_signum", (lambda: gradtx.scale_by_signum(),), "transform", complex=False),
    Entry(
        "add_decayed_weights",
        (
            lambda: gradtx.add_decayed_weights(1e-2),
            lambda: gradtx.add_decayed_weights(1e-2, mask=lambda p: p),
        ),
        "transform",
        needs_params=True,
        bad=(_range(lambda: gradtx.add_decayed_weights(-1.0), "weight_decay"),),
    ),
]


def _labels(params: Any) -> Any:
    """Two parameter groups: the first leaf of every subtree by path order goes to "a", the rest to "b"."""
    import jax

    leaves, treedef = jax.tree.flatten(params)
    return jax.tree.unflatten(treedef, ["a" if i % 2 == 0 else "b" for i in range(len(leaves))])


def _first_leaf_mask(params: Any) -> Any:
    import jax

    leaves, treedef = jax.tree.flatten(params)
    return jax.tree.unflatten(treedef, [i == 0 for i in range(len(leaves))])


_WRAPPERS = [
    Entry(
        "accumulate",
        (lambda: gradtx.accumulate(ADAM, 2), lambda: gradtx.accumulate(SGD, 3, reduction="sum")),
        "wrapper",
        bad=(Bad(lambda: gradtx.accumulate(ADAM, 0), "every_k"),),
    ),
    Entry(
        "apply_if_finite",
        (lambda: gradtx.apply_if_finite(ADAM, 3),),
        "wrapper",
        bad=(Bad(lambda: gradtx.apply_if_finite(ADAM, -1), "max_consecutive_errors"),),
    ),
    Entry("zero_nans", (lambda: gradtx.zero_nans(),), "wrapper"),
    Entry(
        "lookahead",
        (lambda: gradtx.lookahead(ADAM), lambda: gradtx.lookahead(SGD, 2, 0.8, reset_state=True)),
        "wrapper",
        needs_params=True,
        bad=(Bad(lambda: gradtx.lookahead(ADAM, 0), "sync_period"),),
    ),
    Entry(
        "ema_params",
        (lambda: gradtx.ema_params(ADAM, 0.9), lambda: gradtx.ema_params(SGD, 0.5, debias=False)),
        "wrapper",
        needs_params=True,
        bad=(_range(lambda: gradtx.ema_params(ADAM, 1.5), "decay"),),
    ),
    Entry(
        "swa",
        (lambda: gradtx.swa(ADAM, start=2), lambda: gradtx.swa(SGD, start=1, every=2)),
        "wrapper",
        needs_params=True,
        bad=(Bad(lambda: gradtx.swa(ADAM, start=1, every=0), "every"),),
    ),
    Entry(
        "dynamic_loss_scale",
        (lambda: gradtx.dynamic_loss_scale(ADAM, initial_scale=8.0, growth_interval=3),),
        "wrapper",
        bad=(Bad(lambda: gradtx.dynamic_loss_scale(ADAM, growth_interval=0), "growth_interval"),),
    ),
    Entry(
        "monitor",
        (lambda: gradtx.monitor(ADAM), lambda: gradtx.monitor(SGD, 1e-3, 10.0)),
        "wrapper",
        needs_params=True,  # it records parameter norms
    ),
    Entry("freeze", (lambda: gradtx.freeze(), lambda: gradtx.freeze(_first_leaf_mask)), "wrapper"),
    Entry("masked", (lambda: gradtx.masked(ADAM, _first_leaf_mask),), "wrapper"),
    Entry(
        "partition",
        (lambda: gradtx.partition({"a": ADAM, "b": SGD}, _labels),),
        "wrapper",
        bad=(
            Bad(
                lambda: gradtx.partition({"a": ADAM}, _labels).init({"x": jnp.zeros(2), "y": jnp.zeros(2)}),
                "'b'",
            ),
        ),
    ),
    Entry(
        "sam",
        (lambda: gradtx.sam(gradtx.sgd(0.1), gradtx.sgd(0.05)), lambda: gradtx.sam(ADAM, SGD, sync_period=3)),
        "wrapper",
        needs_params=True,
        bad=(Bad(lambda: gradtx.sam(ADAM, SGD, sync_period=0), "sync_period"),),
    ),
]

_COMBINATORS = [
    Entry(
        "chain",
        (lambda: gradtx.chain(gradtx.clip_by_norm(1.0), ADAM), lambda: gradtx.chain()),
        "combinator",
    ),
    Entry(
        "named_chain",
        (lambda: gradtx.named_chain(("clip", gradtx.clip_by_norm(1.0)), ("opt", ADAM)),),
        "combinator",
        bad=(Bad(lambda: gradtx.named_chain(("a", ADAM), ("a", SGD)), "'a'"),),
    ),
    Entry("identity", (lambda: gradtx.identity(),), "combinator"),
    Entry("stateless", (lambda: gradtx.stateless(lambda u, p: u),), "combinator"),
    Entry(
        "reduce_on_plateau",
        (
            lambda: gradtx.reduce_on_plateau(patience=1),
            lambda: gradtx.reduce_on_plateau(0.5, patience=2, cooldown=1, mode="max"),
        ),
        "transform",
        needs_value=True,
        bad=(
            _range(lambda: gradtx.reduce_on_plateau(factor=1.5), "factor"),
            Bad(lambda: gradtx.reduce_on_plateau(mode="up"), "mode"),
        ),
    ),
]

REGISTRY: dict[str, Entry] = {e.name: e for e in _OPTIMIZERS + _TRANSFORMS + _WRAPPERS + _COMBINATORS}
assert len(REGISTRY) == len(_OPTIMIZERS + _TRANSFORMS + _WRAPPERS + _COMBINATORS), "duplicate entry"


def configs() -> list[tuple[str, int, Config]]:
    """(name, index, build) for every configuration of every entry."""
    return [(e.name, i, build) for e in REGISTRY.values() for i, build in enumerate(e.configs)]
