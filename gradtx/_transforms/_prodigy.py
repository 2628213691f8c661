"""Prodigy (Mishchenko & Defazio, 2023): AdamW whose step size D is estimated on the fly."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core.base import GradientTransformation
from gradtx._core.hyperparams import HyperParam, WithHyperparams
from gradtx._core.numerics import (
    Scalars,
    as_compute,
    bias_correction,
    compute_dtype,
    map_unzip,
    safe_div,
    safe_increment,
    zero_count,
)
from gradtx._core.validation import check_same_structure, reject_complex
from gradtx._wrappers._shared import copy_tree, require_params


class ProdigyState(NamedTuple):
    """``d``: the step-size estimate :math:`d_t` (non-decreasing); ``numerator``:
    :math:`r_t`, the weighted sum behind it; ``s``: the weighted gradient sum
    :math:`s_t`; ``mu``/``nu``: Adam's moments of :math:`d\\,g`; ``params0``: :math:`x_0`."""

    count: jax.Array
    d: jax.Array
    numerator: jax.Array
    mu: Any
    nu: Any
    s: Any
    params0: Any
    hyperparams: dict[str, jax.Array]


def _buffers(params: Any, dtype: Any = None) -> Any:
    """Zero buffers in ``dtype``; by default at least float32, as (1e-6 g) squared underflows float16."""
    return jax.tree.map(lambda p: jnp.zeros_like(p, dtype or compute_dtype(jnp.result_type(p))), params)


@dataclasses.dataclass(frozen=True)
class Prodigy(WithHyperparams, GradientTransformation):
    """The Prodigy update, learning rate included (see :func:`gradtx.prodigy`)."""

    learning_rate: HyperParam
    b1: HyperParam
    b2: HyperParam
    beta3: HyperParam | None
    eps: HyperParam
    d0: HyperParam
    d_coef: HyperParam
    weight_decay: HyperParam
    safeguard_warmup: bool = False
    mu_dtype: Any = None
    nu_dtype: Any = None

    @property
    def hyperparam_names(self) -> tuple[str, ...]:  # type: ignore[override]
        names = ("learning_rate", "b1", "b2", "eps", "d0", "d_coef", "weight_decay")
        return names if self.beta3 is None else (*names, "beta3")

    def init(self, params):
        reject_complex(params, "prodigy", "the step-size estimate uses real inner products")
        hyperparams = self.init_hyperparams()
        d = hyperparams["d0"]
        buffers = (_buffers(params, self.mu_dtype), _buffers(params, self.nu_dtype), _buffers(params))
        return ProdigyState(zero_count(), d, jnp.zeros_like(d), *buffers, copy_tree(params), hyperparams)

    def update(self, updates, state, params=None, **extra_args):
        require_params(params, "prodigy")
        check_same_structure(updates, state.mu, "updates", "state.mu")
        check_same_structure(params, state.params0, "params", "state.params0")
        h = state.hyperparams
        count = safe_increment(state.count)
        beta3 = jnp.sqrt(h["b2"]) if self.beta3 is None else h["beta3"]
        d = state.d
        dlr = (
            d
            * h["learning_rate"]
            * jnp.sqrt(bias_correction(h["b2"], count))
            / bias_correction(h["b1"], count)
        )
        s_scale = (d if self.safeguard_warmup else dlr) / h["d0"]
        first = Scalars(d=d, b1=h["b1"], b2=h["b2"], beta3=beta3, s_scale=s_scale)

        def accumulate(g, p, p0, mu, nu, s):
            c = first.for_leaf(g)
            dg = c["d"] * as_compute(g)
            new_mu = c["b1"] * mu.astype(dg.dtype) + (1 - c["b1"]) * dg
            new_nu = c["b2"] * nu.astype(dg.dtype) + (1 - c["b2"]) * dg * dg
            new_s = c["beta3"] * s + c["s_scale"] * dg
            inner = jnp.sum(as_compute(g) * (as_compute(p0) - as_compute(p)).astype(dg.dtype))
            return new_mu.astype(mu.dtype), new_nu.astype(nu.dtype), new_s, inner, jnp.sum(jnp.abs(new_s))

        mu, nu, s, inner, abs_s = map_unzip(
            accumulate, 5, updates, params, state.params0, state.mu, state.nu, state.s
        )
        total = lambda tree: sum((x.astype(d.dtype) for x in jax.tree.leaves(tree)), jnp.zeros_like(d))  # noqa: E731
        numerator = beta3 * state.numerator + (d / h["d0"]) * dlr * total(inner)
        # A zero denominator (every gradient so far zero) keeps d, where 0/0 would make it NaN.
        new_d = jnp.maximum(d, h["d_coef"] * safe_div(numerator, total(abs_s)))
        second = Scalars(dlr=dlr, d_eps=new_d * h["eps"], wd=h["weight_decay"])

        def step(g, p, m, v):
            c = second.for_leaf(g)
            cd = compute_dtype(jnp.result_type(g))
            m, v, pc = m.astype(cd), v.astype(cd), as_compute(p).astype(cd)
            out = -c["wd"] * c["dlr"] * pc - c["dlr"] * safe_div(m, jnp.sqrt(v) + c["d_eps"])
            return (out.astype(jnp.result_type(g)),)

        (out,) = map_unzip(step, 1, updates, params, mu, nu)
        new_state = ProdigyState(
            count, new_d, numerator, mu, nu, s, state.params0, self.next_hyperparams(h, count)
        )
        return out, new_state
