"""Every parity comparison, defined once: used by the tests and by benchmarks/parity_report.py.

A :class:`Case` pairs a gradtx optimizer with an oracle (a float64 reference
from :mod:`tests.reference`, ``torch.optim`` or optax). :func:`case_error`
runs both on the same nested-pytree problem (parameters and a stream of
``STEPS`` gradient trees from :mod:`tests.helpers`) and returns the maximum
relative error between the final parameters.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from tests import reference
from tests.helpers import grad_stream, max_rel_error, nested_params, to_jax

STEPS = 60
SEED = 0
TOL32 = 1e-5  # float32 runs: the target, unless float32 rounding alone exceeds it (FLOOR_FACTOR)
FLOOR_FACTOR = 5  # float32 runs may be this many times less accurate than the reference run in float32
TOL64 = 1e-10  # float64 runs

Tree = Any


# --- running a gradtx (or optax) transformation ---------------------------------------------

_FLOAT = object()  # stands for a float configuration field in a compiled step's static key


def _map_floats(config: Any, fn: Callable[[Any], Any]) -> Any:
    """``config`` rebuilt with ``fn`` applied to each float field (through tuples and dataclasses)."""
    if isinstance(config, float) or config is _FLOAT:
        return fn(config)
    if type(config) is tuple:
        return tuple(_map_floats(v, fn) for v in config)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        fields = {f.name: _map_floats(getattr(config, f.name), fn) for f in dataclasses.fields(config)}
        return dataclasses.replace(config, **fields)
    return config


def _split_floats(tx: Any) -> tuple[Any, list[float]]:
    """``tx`` with the float fields of its (nested) configuration replaced by ``_FLOAT``, and those floats.

    Compiling a step takes ~0.5 s while running 60 steps takes ~10 ms, so a step
    is compiled once per optimizer *structure*: the floats are passed as traced
    arguments (gradtx's update reads its hyperparameters from the state anyway).
    Optax transformations (not dataclasses) are kept whole.
    """
    floats: list[float] = []
    return _map_floats(tx, lambda v: floats.append(v) or _FLOAT), floats


def _fill_floats(skeleton: Any, floats: list) -> Any:
    """The inverse of :func:`_split_floats`."""
    values = iter(floats)
    return _map_floats(skeleton, lambda _: next(values))


def _step(skeleton: Any, floats: list, params: Tree, state: Any, grads: Tree) -> tuple[Tree, Any]:
    tx = _fill_floats(skeleton, floats)
    updates, state = tx.update(grads, state, params)
    return gradtx.apply_updates(params, updates), state


_jitted_step = jax.jit(_step, static_argnums=0)


def run_transformation(tx: Any, params: Tree, grads: list, *, jit: bool = True) -> Tree:
    """Applies ``tx`` (gradtx or optax) to the gradient stream; returns the final parameters."""
    skeleton, floats = _split_floats(tx)
    step = _jitted_step if jit else _step
    state = tx.init(params)
    for g in grads:
        params, state = step(skeleton, floats, params, state, g)
    return params


# --- oracles ---------------------------------------------------------------------------------


def run_torch(optimizer: str, kwargs: dict, params: Tree, grads: list) -> Tree:
    """Runs ``torch.optim.<optimizer>(**kwargs)`` in the parameters' dtype, setting ``p.grad`` by hand."""
    torch = importlib.import_module("torch")
    leaves, treedef = jax.tree.flatten(params)  # None leaves hold no parameter
    tensors = [torch.nn.Parameter(torch.from_numpy(np.array(x))) for x in leaves]
    opt = getattr(torch.optim, optimizer)(tensors, **kwargs)
    for g in grads:
        for t, g_leaf in zip(tensors, jax.tree.leaves(g)):
            t.grad = torch.from_numpy(np.array(g_leaf))
        opt.step()
    return treedef.unflatten([t.detach().numpy().astype(np.float64) for t in tensors])


def run_optax(name: str, kwargs: dict, params: Tree, grads: list) -> Tree:
    """Runs ``optax.<name>(**kwargs)`` in the parameters' dtype."""
    optax = importlib.import_module("optax")
    dtype = jax.tree.leaves(params)[0].dtype
    final = run_transformation(
        getattr(optax, name)(**kwargs), to_jax(params, dtype), [to_jax(g, dtype) for g in grads]
    )
    return jax.tree.map(np.asarray, final)


# --- cases -----------------------------------------------------------------------------------


def _show(value: Any) -> str:
    if callable(value):
        return value.__name__
    if isinstance(value, (dict, list)):
        return "<tree>"
    return repr(value)


def call_string(name: str, kwargs: dict) -> str:
    return f"{name}({', '.join(f'{k}={_show(v)}' for k, v in kwargs.items())})"


@dataclasses.dataclass(frozen=True)
class Case:
    """One comparison: ``make_tx()`` against ``run_oracle(params, grads) -> final params``.

    ``reference`` is the float64 reference for the same configuration (when
    there is one); it sets the float32 tolerance (see :func:`tolerance`).
    """

    call: str  # the gradtx call, as the report prints it
    oracle: str  # what it is compared with
    make_tx: Callable[[], Any]
    run_oracle: Callable[[Tree, list], Tree]
    reference: Callable[..., Tree] | None = None
    needs: str | None = None  # the module the oracle imports ("torch", "optax"), for skipping

    def __str__(self) -> str:
        return f"{self.call} vs {self.oracle}"


def _reference_for(name: str, kwargs: dict) -> Callable[..., Tree] | None:
    ref = getattr(reference, name, None)
    return None if ref is None else functools.partial(ref, **kwargs)


def against_reference(name: str, **kwargs: Any) -> Case:
    """``gradtx.<name>(**kwargs)`` vs ``reference.<name>(params, grads, **kwargs)``: same keywords."""
    ref = _reference_for(name, kwargs)
    return Case(
        call_string(name, kwargs), "reference", functools.partial(getattr(gradtx, name), **kwargs), ref, ref
    )


def against_torch(name: str, kwargs: dict, optimizer: str, torch_kwargs: dict) -> Case:
    return Case(
        call_string(name, kwargs),
        call_string(f"torch.optim.{optimizer}", torch_kwargs),
        functools.partial(getattr(gradtx, name), **kwargs),
        functools.partial(run_torch, optimizer, torch_kwargs),
        _reference_for(name, kwargs),
        needs="torch",
    )


def against_optax(name: str, kwargs: dict, optax_name: str, optax_kwargs: dict) -> Case:
    return Case(
        call_string(name, kwargs),
        call_string(f"optax.{optax_name}", optax_kwargs),
        functools.partial(getattr(gradtx, name), **kwargs),
        functools.partial(run_optax, optax_name, optax_kwargs),
        _reference_for(name, kwargs),
        needs="optax",
    )


def problem(dtype: Any = np.float32, seed: int = SEED, steps: int = STEPS) -> tuple[Tree, list]:
    """The nested parameters and gradient stream of tests.helpers, as NumPy arrays of ``dtype``."""
    return nested_params(seed, dtype), grad_stream(seed, steps, dtype)


def case_error(case: Case, dtype: Any = np.float32, *, jit: bool = True) -> float:
    """Max relative error of gradtx's final parameters against the oracle's, both run in ``dtype``.

    Both start from the same ``dtype`` values (references then compute in float64).
    """
    if np.dtype(dtype) == np.float64 and not jax.config.jax_enable_x64:
        raise RuntimeError("float64 runs need jax_enable_x64 (the `x64` fixture, or enable_x64())")
    params, grads = problem(dtype)
    final = run_transformation(case.make_tx(), *jax_problem(np.dtype(dtype).name), jit=jit)
    return max_rel_error(final, case.run_oracle(params, grads))


@functools.cache
def jax_problem(dtype: str) -> tuple[Tree, list]:
    """:func:`problem` as JAX arrays, converted once per dtype (it costs ~50 ms each time)."""
    params, grads = problem(dtype)
    return to_jax(params, dtype), [to_jax(g, dtype) for g in grads]


def float32_floor(case: Case) -> float:
    """The error of the case's reference equations evaluated in float32 instead of float64.

    Parameters travel O(1) in float32 steps of ~1e-7 relative rounding each, so
    an element that ends near zero carries a relative error no float32
    implementation can avoid; this measures it on the very problem tested.
    """
    if case.reference is None:
        return 0.0
    params, grads = problem(np.float32)
    return max_rel_error(case.reference(params, grads, dtype=np.float32), case.reference(params, grads))


def tolerance(case: Case, dtype: Any) -> float:
    """TOL64 in float64; in float32, TOL32 or FLOOR_FACTOR times the float32 floor if larger."""
    if np.dtype(dtype) == np.float64:
        return TOL64
    return max(TOL32, FLOOR_FACTOR * float32_floor(case))


@contextlib.contextmanager
def enable_x64() -> Iterator[None]:
    """Float64 enabled inside the block (what the tests' ``x64`` fixture does)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


def matrices_only(params: Tree) -> Tree:
    """A mask function: decay only leaves with two or more dimensions."""
    return jax.tree.map(lambda x: np.ndim(x) >= 2, params)


MATRIX_MASK = matrices_only(nested_params())  # the same mask, as a fixed tree of bools

LR = 0.05  # large enough to move every parameter well away from its start in 60 steps

REFERENCE_CASES = [
    against_reference("sgd", learning_rate=LR),
    against_reference("sgd", learning_rate=LR, momentum=0.9),
    against_reference("sgd", learning_rate=LR, momentum=0.9, nesterov=True),
    against_reference("sgd", learning_rate=LR, momentum=0.9, dampening=0.5),
    against_reference("sgd", learning_rate=LR, weight_decay=0.1),
    against_reference("sgd", learning_rate=LR, momentum=0.5, weight_decay=0.1),
    against_reference("adagrad"),
    against_reference(
        "adagrad", learning_rate=0.1, initial_accumulator_value=0.1, eps=1e-6, weight_decay=0.1
    ),
    against_reference("rmsprop"),
    against_reference("rmsprop", learning_rate=0.01, decay=0.99, eps=1e-6, eps_in_sqrt=False),
    against_reference("rmsprop", learning_rate=0.01, eps_in_sqrt=False, centered=True, momentum=0.9),
    against_reference("rmsprop", learning_rate=0.01, momentum=0.9, nesterov=True, initial_scale=1.0),
    against_reference("rmsprop", learning_rate=0.01, weight_decay=0.1),
    against_reference("adadelta"),
    against_reference("adadelta", learning_rate=0.5, rho=0.95, eps=1e-5, weight_decay=0.1),
    against_reference("adam"),
    against_reference("adam", learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8),
    against_reference("adam", learning_rate=0.01, weight_decay=0.1),
    against_reference("adam", learning_rate=0.01, amsgrad=True),
    against_reference("adam", learning_rate=0.01, nesterov=True),
    against_reference("adamw"),
    against_reference("adamw", learning_rate=0.01, weight_decay=0.1, amsgrad=True),
    against_reference("adamax"),
    against_reference("adamax", learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-6, weight_decay=0.1),
    against_reference("nadam"),
    against_reference("nadam", learning_rate=0.01, b2=0.99, eps_root=1e-8, weight_decay=0.1),
    against_reference("amsgrad"),
    against_reference("amsgrad", learning_rate=0.01, b1=0.8, b2=0.99, weight_decay=0.1),
    against_reference("qhadam"),
    against_reference("qhadam", learning_rate=0.01, b1=0.9, b2=0.99, nu1=0.5, nu2=0.8, weight_decay=0.1),
    against_reference("aggmo"),
    against_reference("aggmo", learning_rate=0.01, betas=(0.5, 0.9), weight_decay=0.1),
    against_reference("clip", max_delta=0.5),
    against_reference("clip_by_norm", max_norm=1.0),
    against_reference("clip_by_block_norm", max_norm=1.0),
    against_reference("add_decayed_weights", weight_decay=0.05),
    against_reference("add_decayed_weights", weight_decay=0.05, mask=MATRIX_MASK),
    against_reference("add_decayed_weights", weight_decay=0.05, mask=matrices_only),
    against_reference("scale_by_learning_rate", learning_rate=LR),
    against_reference("scale_by_learning_rate", learning_rate=LR, flip_sign=False),
]

ADAM = dict(learning_rate=0.01, b1=0.9, b2=0.999, eps=1e-8)
TORCH_ADAM = dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8)
_RMS = dict(learning_rate=0.01, decay=0.99, eps=1e-6, eps_in_sqrt=False)
_TORCH_RMS = dict(lr=0.01, alpha=0.99, eps=1e-6)

TORCH_CASES = [
    against_torch("sgd", dict(learning_rate=LR), "SGD", dict(lr=LR)),
    against_torch("sgd", dict(learning_rate=LR, momentum=0.9), "SGD", dict(lr=LR, momentum=0.9)),
    against_torch(
        "sgd",
        dict(learning_rate=LR, momentum=0.9, nesterov=True),
        "SGD",
        dict(lr=LR, momentum=0.9, nesterov=True),
    ),
    against_torch(
        "sgd",
        dict(learning_rate=LR, momentum=0.9, dampening=0.5),
        "SGD",
        dict(lr=LR, momentum=0.9, dampening=0.5),
    ),
    against_torch("sgd", dict(learning_rate=LR, weight_decay=0.1), "SGD", dict(lr=LR, weight_decay=0.1)),
    against_torch(
        "adagrad",
        dict(learning_rate=0.1, initial_accumulator_value=0.1, eps=1e-6),
        "Adagrad",
        dict(lr=0.1, initial_accumulator_value=0.1, eps=1e-6),
    ),
    against_torch("rmsprop", _RMS, "RMSprop", _TORCH_RMS),
    against_torch(
        "rmsprop",
        dict(_RMS, centered=True, momentum=0.9),
        "RMSprop",
        dict(_TORCH_RMS, centered=True, momentum=0.9),
    ),
    against_torch(
        "adadelta", dict(learning_rate=1.0, rho=0.9, eps=1e-6), "Adadelta", dict(lr=1.0, rho=0.9, eps=1e-6)
    ),
    against_torch("adam", ADAM, "Adam", TORCH_ADAM),
    against_torch("adam", dict(ADAM, amsgrad=True), "Adam", dict(TORCH_ADAM, amsgrad=True)),
    against_torch("adam", dict(ADAM, weight_decay=0.1), "Adam", dict(TORCH_ADAM, weight_decay=0.1)),
    against_torch("adamw", dict(ADAM, weight_decay=0.1), "AdamW", dict(TORCH_ADAM, weight_decay=0.1)),
    against_torch("amsgrad", ADAM, "Adam", dict(TORCH_ADAM, amsgrad=True)),
    against_torch("adamax", ADAM, "Adamax", TORCH_ADAM),
]

OPTAX_CASES = [
    against_optax("adamax", ADAM, "adamax", ADAM),
    against_optax("nadam", ADAM, "nadam", ADAM),
    against_optax("adam", ADAM, "adam", ADAM),
    against_optax("adamw", dict(ADAM, weight_decay=0.1), "adamw", dict(ADAM, weight_decay=0.1)),
    against_optax("add_momentum", dict(decay=0.9), "trace", dict(decay=0.9)),
    against_optax("add_momentum", dict(decay=0.9, nesterov=True), "trace", dict(decay=0.9, nesterov=True)),
    against_optax("clip_by_norm", dict(max_norm=1.0), "clip_by_global_norm", dict(max_norm=1.0)),
    against_optax(
        "add_decayed_weights", dict(weight_decay=0.05), "add_decayed_weights", dict(weight_decay=0.05)
    ),
    against_optax(
        "add_decayed_weights",
        dict(weight_decay=0.05, mask=MATRIX_MASK),
        "add_decayed_weights",
        dict(weight_decay=0.05, mask=MATRIX_MASK),
    ),
    against_optax(
        "add_decayed_weights",
        dict(weight_decay=0.05, mask=matrices_only),
        "add_decayed_weights",
        dict(weight_decay=0.05, mask=matrices_only),
    ),
]


# --- the comparisons that are not a plain "final parameters agree" --------------------------


def amsgrad_vs_optax(steps: int = STEPS) -> dict[str, float]:
    """How far gradtx's (torch's) AMSGrad is from ``optax.amsgrad`` after ``steps`` steps.

    optax takes the running maximum of the *bias-corrected* second moment;
    torch and gradtx that of the uncorrected one, corrected afterwards. Early
    on :math:`v_t / (1-\\beta_2^t)` is a noisy few-sample estimate, so optax's
    maximum holds on to large early values and takes smaller steps.

    Returns the max relative error on the final parameters (``params``, the
    report's metric) and the relative L2 distance between the two total
    displacements ``final - initial`` (``displacement``), which does not
    depend on where the parameters started.
    """
    optax = importlib.import_module("optax")
    params, grads = problem(np.float32, steps=steps)
    p0, gs = to_jax(params, jnp.float32), [to_jax(g, jnp.float32) for g in grads]
    ours = run_transformation(gradtx.amsgrad(**ADAM), p0, gs)
    theirs = run_transformation(optax.amsgrad(**ADAM), p0, gs)

    def moved(final: Tree) -> np.ndarray:
        pairs = zip(jax.tree.leaves(final), jax.tree.leaves(p0))
        return np.concatenate(
            [np.ravel(np.asarray(f, np.float64) - np.asarray(p, np.float64)) for f, p in pairs]
        )

    gap = np.linalg.norm(moved(ours) - moved(theirs)) / np.linalg.norm(moved(theirs))
    return {"params": max_rel_error(ours, theirs), "displacement": float(gap)}


def clip_zero_gradient(tx: Any) -> np.ndarray:
    """The update ``tx`` makes from a zero gradient (max_norm = 0 is the interesting case)."""
    zeros = {"w": jnp.zeros(3)}
    updates, _ = tx.update(zeros, tx.init(zeros), zeros)
    return np.asarray(updates["w"])


def noise_statistics(tx: Any, *, size: int = 200_000, steps: int = 8) -> list[tuple[float, float]]:
    """(mean, variance) of the updates ``tx`` makes from a zero gradient on one large leaf, per step.

    With ``learning_rate = 1`` those updates are the (negated) noise itself.
    """
    zeros = jnp.zeros(size)
    state = tx.init(zeros)
    update = jax.jit(tx.update)
    stats = []
    for _ in range(steps):
        u, state = update(zeros, state, zeros)
        u = np.asarray(u, np.float64)
        stats.append((float(u.mean()), float(u.var())))
    return stats


def noise_variance_error(stats: list[tuple[float, float]], eta: float, gamma: float) -> float:
    """Max relative error of the measured variances against :math:`\\eta / (1+t)^\\gamma`, t from 0."""
    return max(abs(var / (eta / (1 + t) ** gamma) - 1) for t, (_, var) in enumerate(stats))
