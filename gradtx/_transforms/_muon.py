"""Muon's rescaling: momentum orthogonalised by a Newton-Schulz iteration (Jordan et al., 2024)."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._core.base import EmptyState, GradientTransformation
from gradtx._core.docs import shared_docs
from gradtx._core.hyperparams import HyperParam, WithHyperparams
from gradtx._core.numerics import (
    Scalars,
    as_compute,
    bias_correction,
    map_unzip,
    safe_div,
    safe_increment,
    zero_count,
    zeros_like,
)
from gradtx._core.quantize import reject_quantized
from gradtx._core.validation import check_beta, check_nonnegative, check_same_structure, reject_complex
from gradtx._transforms._adaptive import decay_scalars, ema

NS_COEFFS = (3.4445, -4.7750, 2.0315)  # Jordan's quintic, as optax's default


def newton_schulz(x: jax.Array, coeffs: jax.Array, steps: int, eps: jax.Array) -> jax.Array:
    r"""Approximately orthogonalises a matrix: :math:`X \mapsto U S' V^T` with :math:`S' \approx I`.

    ``x`` is scaled to unit Frobenius norm (plus eps), then ``steps`` times
    :math:`X \leftarrow aX + (bA + cA^2)X` with :math:`A = XX^T`, on the wide
    orientation (a tall matrix is transposed first and back after).
    """
    sharding = _explicit_sharding(x)
    if sharding is not None:
        # Under explicit mesh axes the output sharding of x @ x.T is ambiguous (an error, not the
        # compiler's choice): gather the matrix, iterate replicated, and shard the result back.
        replicated = jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
        x = jax.sharding.reshard(x, replicated)
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    x = safe_div(x, jnp.linalg.norm(x) + eps)
    a, b, c = coeffs[0], coeffs[1], coeffs[2]
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    x = x.T if tall else x
    return x if sharding is None else jax.sharding.reshard(x, sharding)


def _explicit_sharding(x: jax.Array) -> Any:
    """``x``'s sharding if it is sharded over explicit mesh axes, else None."""
    sharding = getattr(jax.typeof(x), "sharding", None)
    mesh = getattr(sharding, "mesh", None)
    axis_types = getattr(mesh, "axis_types", ())
    if not any(t == jax.sharding.AxisType.Explicit for t in axis_types):
        return None
    return sharding if any(entry is not None for entry in sharding.spec) else None


class ScaleByMuonState(NamedTuple):
    count: jax.Array
    mu: Any
    hyperparams: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class ScaleByMuon(WithHyperparams, GradientTransformation):
    beta: HyperParam
    eps: HyperParam
    ns_coeffs: tuple[float, float, float]
    ns_steps: int
    nesterov: bool
    adaptive: bool
    mu_dtype: Any = None
    hyperparam_names = ("beta", "eps", "ns_coeffs")

    def init(self, params):
        reject_complex(params, "scale_by_muon", "the Newton-Schulz iteration is written for real matrices")
        return ScaleByMuonState(zero_count(), zeros_like(params, self.mu_dtype), self.init_hyperparams())

    def update(self, updates, state, params=None, **extra_args):
        check_same_structure(updates, state.mu, "updates", "state.mu")
        for path, g in jax.tree_util.tree_flatten_with_path(updates)[0]:
            if np.ndim(g) != 2:
                raise ValueError(
                    f"scale_by_muon orthogonalises matrices only; leaf "
                    f"{jax.tree_util.keystr(path)} has shape {np.shape(g)} (use gradtx.muon, "
                    "which sends other leaves to AdamW, or gradtx.partition)"
                )
        h = state.hyperparams
        count = safe_increment(state.count)
        scalars = Scalars(
            bc=bias_correction(h["beta"], count),
            bc_next=bias_correction(h["beta"], safe_increment(count)),
            eps=h["eps"],
            coeffs=h["ns_coeffs"],
            **decay_scalars(beta=h["beta"]),
        )

        def step(g, mu):
            gc = as_compute(g)
            s = scalars.for_leaf(g)
            new_mu = ema(gc, mu, s["beta"], s["one_minus_beta"])
            if self.nesterov:
                mu_hat = s["beta"] * new_mu / s["bc_next"] + s["one_minus_beta"] * gc / s["bc"]
            else:
                mu_hat = new_mu / s["bc"]
            out = newton_schulz(mu_hat, s["coeffs"], self.ns_steps, s["eps"])
            if self.adaptive:
                out = jnp.sum(mu_hat * out) * out
            return out.astype(g.dtype), new_mu.astype(mu.dtype)

        out, mu = map_unzip(step, 2, updates, state.mu)
        return out, ScaleByMuonState(count, mu, self.next_hyperparams(h, count))


@shared_docs
def scale_by_muon(
    beta: HyperParam = 0.95,
    eps: HyperParam = 1e-8,
    ns_coeffs: tuple[float, float, float] = NS_COEFFS,
    ns_steps: int = 5,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    mu_dtype: Any = None,
) -> GradientTransformation:
    r"""Muon's rescaling of matrix updates: bias-corrected momentum, then Newton-Schulz.

    .. math::
        m_t = \beta m_{t-1} + (1-\beta) g_t, \quad
        \hat m_t = \frac{\beta m_t}{1-\beta^{t+1}} + \frac{(1-\beta) g_t}{1-\beta^t}
        \;\text{(nesterov)} \;\text{or}\; \frac{m_t}{1-\beta^t}, \quad
        u_t = \mathrm{NS}_{a,b,c}^{k}\!\left(\frac{\hat m_t}{\|\hat m_t\|_F + \epsilon}\right)

    where one Newton-Schulz step maps :math:`X \mapsto aX + (bXX^T + c(XX^T)^2)X`
    (on :math:`X^T` for a tall matrix) and :math:`k` = ``ns_steps``; the result
    is close to the orthogonal factor :math:`UV^T` of :math:`\hat m_t = USV^T`.
    ``adaptive=True`` multiplies :math:`u_t` by :math:`\langle \hat m_t, u_t \rangle`
    (Bernstein & Newhouse's dual-norm scaling). Every leaf must be a matrix:
    :func:`gradtx.muon` routes the others to AdamW. Equals
    ``optax.contrib.scale_by_muon`` with its default ``'frobenius'``
    preconditioning; optax's other preconditionings, coefficient presets and
    per-step coefficient tables are not offered.

    Args:
        beta: decay rate of the momentum, in [0, 1).
        eps: {eps}
        ns_coeffs: the quintic's :math:`(a, b, c)`; stored as ``ns_coeffs``.
        ns_steps: number of Newton-Schulz steps :math:`k`, an integer >= 0 (static).
        nesterov: use the Nesterov form of :math:`\hat m_t`.
        adaptive: scale by the dual norm (see above).
        mu_dtype: {mu_dtype}

    References:
        Jordan et al., "Muon: An optimizer for hidden layers in neural
        networks", 2024 (kellerjordan.github.io/posts/muon);
        Bernstein & Newhouse, "Old Optimizer, New Norm: An Anthology", 2024.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> tx = gradtx.scale_by_muon(nesterov=False)
        >>> g = jnp.diag(jnp.array([3.0, 0.5]))
        >>> u, _ = tx.update(g, tx.init(g))
        >>> [round(float(v), 1) for v in jnp.diag(u)]  # both singular values near 1
        [0.7, 1.0]
    """
    check_beta("beta", beta)
    check_nonnegative("eps", eps)
    reject_quantized("scale_by_muon", mu_dtype=mu_dtype)
    coeffs = tuple(float(c) for c in np.ravel(np.asarray(ns_coeffs, dtype=np.float64)))
    if len(coeffs) != 3 or not np.all(np.isfinite(coeffs)):
        raise ValueError(f"ns_coeffs must be three finite numbers (a, b, c), got {ns_coeffs!r}")
    if isinstance(ns_steps, bool) or not isinstance(ns_steps, (int, np.integer)) or ns_steps < 0:
        raise ValueError(f"ns_steps must be an integer >= 0, got {ns_steps!r}")
    return ScaleByMuon(beta, eps, coeffs, int(ns_steps), bool(nesterov), bool(adaptive), mu_dtype)


@dataclasses.dataclass(frozen=True)
class ScaleByWidth(GradientTransformation):
    """Multiplies a matrix update by :math:`\\sqrt{\\max(1, n_{out} / n_{in})}` (shape ``(n_in, n_out)``)."""

    def init(self, params):
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        def scaled(u):
            fan_in, fan_out = np.shape(u)
            return (as_compute(u) * np.sqrt(max(1.0, fan_out / fan_in))).astype(u.dtype)

        return jax.tree.map(scaled, updates), state
