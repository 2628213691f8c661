"""L-BFGS, the zoom line search and ``minimize``: against scipy, optax and the explicit BFGS matrix."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize
from helpers import rosenbrock_loss

import gradtx
from gradtx._transforms._lbfgs import two_loop


def _scipy_min(fun, x0):
    f = jax.jit(jax.value_and_grad(fun))
    res = scipy.optimize.minimize(
        lambda x: tuple(np.asarray(v, np.float64) for v in f(jnp.asarray(x))),
        np.asarray(x0, np.float64),
        jac=True,
        method="L-BFGS-B",
        options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000},
    )
    return res


def _solve(fun, x0, tx=None, **kw):
    return jax.jit(gradtx.minimize, static_argnums=(0, 2))(fun, x0, tx or gradtx.lbfgs(), **kw)


def test_rosenbrock_2d_matches_scipy(x64):
    x0 = jnp.array([-1.2, 1.0])
    x, info = _solve(rosenbrock_loss, x0, tol=1e-10)
    ref = _scipy_min(rosenbrock_loss, x0)
    assert bool(info.converged) and int(info.num_steps) < 100
    np.testing.assert_allclose(x, ref.x, rtol=1e-6)
    np.testing.assert_allclose(x, np.ones(2), rtol=1e-8)


def test_rosenbrock_10d_pytree_matches_scipy(x64):
    x0 = {"a": jnp.linspace(-1.0, 0.5, 4), "b": (jnp.full((2, 3), 0.3),)}
    x, info = _solve(rosenbrock_loss, x0, tol=1e-10)
    flat = jnp.concatenate([jnp.ravel(v) for v in jax.tree.leaves(x)])
    ref = _scipy_min(
        lambda v: rosenbrock_loss([v]), jnp.concatenate([jnp.ravel(v) for v in jax.tree.leaves(x0)])
    )
    assert bool(info.converged)
    assert jax.tree.structure(x) == jax.tree.structure(x0)
    np.testing.assert_allclose(flat, ref.x, rtol=1e-6)
    np.testing.assert_allclose(flat, np.ones(10), rtol=1e-8)


def test_logistic_regression_matches_scipy(x64):
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    X, y, lam = jnp.asarray(X), jnp.asarray(y, jnp.float64), 1e-2

    def loss(p):
        z = X @ p["w"] + p["b"]
        return jnp.mean(jnp.logaddexp(0.0, z) - y * z) + 0.5 * lam * jnp.sum(p["w"] ** 2)

    p0 = {"w": jnp.zeros(X.shape[1]), "b": jnp.zeros(())}
    p, info = _solve(loss, p0, tol=1e-9)
    ref = _scipy_min(lambda v: loss({"w": v[:-1], "b": v[-1]}), np.zeros(X.shape[1] + 1))
    assert bool(info.converged)
    flat = np.concatenate([np.asarray(p["w"]), np.asarray(p["b"])[None]])
    np.testing.assert_allclose(float(info.value), ref.fun, rtol=1e-9)
    np.testing.assert_allclose(flat, ref.x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("start", [0.0, 1.5, -2.0])
def test_zoom_linesearch_satisfies_strong_wolfe(x64, start):
    fun = lambda w: rosenbrock_loss(w) + jnp.sum(jnp.sin(3 * w))  # noqa: E731
    c1, c2 = 1e-4, 0.3
    w = jnp.full(4, start) + jnp.arange(4.0) * 0.1
    value, grad = jax.value_and_grad(fun)(w)
    ls = gradtx.scale_by_zoom_linesearch(30, slope_rtol=c1, curv_rtol=c2, initial_guess_strategy="one")
    direction = -grad / jnp.linalg.norm(grad)
    updates, state = ls.update(direction, ls.init(w), w, value=value, grad=grad, value_fn=fun)
    a = float(state.learning_rate)
    new_value, new_grad = jax.value_and_grad(fun)(w + a * direction)
    slope0 = float(grad @ direction)
    assert bool(state.info.wolfe) and a > 0
    assert float(new_value) <= float(value) + c1 * a * slope0
    assert abs(float(new_grad @ direction)) <= c2 * abs(slope0)
    np.testing.assert_allclose(updates, a * direction)
    np.testing.assert_allclose(state.value, new_value)
    np.testing.assert_allclose(state.grad, new_grad)


def test_linesearch_forwards_named_extra_args_to_value_fn(x64):
    fun = lambda w, target: jnp.sum((w - target) ** 2)  # noqa: E731
    tx = gradtx.chain(gradtx.scale(-1.0), gradtx.scale_by_zoom_linesearch())
    w, t = jnp.zeros(3), jnp.arange(3.0)
    grad = jax.grad(fun)(w, t)
    updates, _ = tx.update(grad, tx.init(w), w, value_fn=fun, target=t, unrelated=1.0)
    np.testing.assert_allclose(w + updates, t, atol=1e-12)


def _explicit_bfgs_inverse(pairs, gamma, n):
    H = gamma * np.eye(n)
    for s, y in pairs:
        rho = 1.0 / (s @ y)
        V = np.eye(n) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    return H


def test_two_loop_equals_explicit_bfgs_matrix(x64):
    rng = np.random.default_rng(0)
    n, m = 5, 3
    A = rng.standard_normal((n, n))
    A = A @ A.T + n * np.eye(n)
    pairs = [(s, A @ s) for s in rng.standard_normal((m, n))]
    g = rng.standard_normal(n)
    gamma = pairs[-1][0] @ pairs[-1][1] / (pairs[-1][1] @ pairs[-1][1])
    S, Y = jnp.asarray([p[0] for p in pairs]), jnp.asarray([p[1] for p in pairs])
    rho = 1.0 / jnp.sum(S * Y, axis=1)
    got = two_loop(jnp.asarray(g), S, Y, rho, gamma)
    np.testing.assert_allclose(got, _explicit_bfgs_inverse(pairs, gamma, n) @ g, rtol=1e-12)
    # an empty slot (rho = 0) changes nothing
    pad = lambda t: jnp.concatenate([jnp.zeros_like(t[:1]), t])  # noqa: E731
    np.testing.assert_allclose(two_loop(jnp.asarray(g), pad(S), pad(Y), pad(rho), gamma), got, rtol=1e-12)


def test_lbfgs_is_exact_on_quadratic_after_n_exact_steps(x64):
    """With exact line searches on a quadratic, n steps terminate and H_n = A^{-1} (N&W Thm 6.4 analogue)."""
    rng = np.random.default_rng(1)
    n = 4
    A = rng.standard_normal((n, n))
    A = jnp.asarray(A @ A.T + np.eye(n))
    b = jnp.asarray(rng.standard_normal(n))
    tx = gradtx.scale_by_lbfgs(memory_size=n)
    x, state = jnp.zeros(n), tx.init(jnp.zeros(n))
    for _ in range(n):
        g = A @ x - b
        p, state = tx.update(g, state, x)
        x = x - (g @ p) / (p @ A @ p) * p  # exact minimiser along -p
    np.testing.assert_allclose(x, jnp.linalg.solve(A, b), rtol=1e-10)
    g = jnp.asarray(rng.standard_normal(n))
    _, state = tx.update(A @ x - b, state, x)  # stores the n-th pair
    S, Y = state.s, state.y
    gamma = (S[-1] @ Y[-1]) / (Y[-1] @ Y[-1])
    H = jax.vmap(lambda e: two_loop(e, S, Y, state.rho, gamma))(jnp.eye(n))  # H is symmetric
    np.testing.assert_allclose(H @ g, jnp.linalg.solve(A, g), rtol=1e-8)
    x, info = _solve(lambda v: 0.5 * v @ A @ v - b @ v, jnp.zeros(n), gradtx.lbfgs(memory_size=n), tol=1e-10)
    np.testing.assert_allclose(x, jnp.linalg.solve(A, b), rtol=1e-9)


def test_trajectory_close_to_optax_lbfgs(x64):
    A = jnp.diag(jnp.array([1.0, 3.0, 10.0, 30.0]))
    fun = lambda x: 0.5 * x @ A @ x - jnp.sum(x)  # noqa: E731
    x0 = jnp.array([1.0, -1.0, 2.0, 0.5])
    ours, theirs = gradtx.lbfgs(), optax.lbfgs()
    xa, sa, xb, sb = x0, ours.init(x0), x0, theirs.init(x0)
    gaps = []
    for _ in range(4):
        v, g = jax.value_and_grad(fun)(xa)
        u, sa = ours.update(g, sa, xa, value=v, grad=g, value_fn=fun)
        xa = xa + u
        v, g = jax.value_and_grad(fun)(xb)
        u, sb = theirs.update(g, sb, xb, value=v, grad=g, value_fn=fun)
        xb = xb + u
        gaps.append(float(jnp.max(jnp.abs(xa - xb))))
    assert max(gaps) < 1e-6, gaps


def test_minimize_compiles_once_and_runs_other_transformations(x64):
    traces = []

    def fun(x):
        traces.append(1)
        return jnp.sum((x - 1.0) ** 2)

    solve = jax.jit(gradtx.minimize, static_argnums=(0, 2))
    for start in (0.0, 5.0, -3.0):
        x, info = solve(fun, jnp.full(3, start), gradtx.lbfgs(), tol=1e-8)
        np.testing.assert_allclose(x, 1.0, rtol=1e-8)
    n_traces = len(traces)
    solve(fun, jnp.full(3, 2.0), gradtx.lbfgs(), tol=1e-8)  # an equal, new transformation object
    assert len(traces) == n_traces
    x, info = solve(fun, jnp.zeros(3), gradtx.adam(0.1), max_steps=2000, tol=1e-6)
    assert bool(info.converged) and 0 < int(info.num_steps) < 2000
    x, info = solve(fun, jnp.zeros(3), optax.sgd(0.1), tol=1e-6)
    assert bool(info.converged)


def test_zero_gradient_gives_zero_step():
    tx = gradtx.lbfgs()
    w = jnp.ones(3)
    fun = lambda x: jnp.sum((x - 1.0) ** 2)  # noqa: E731
    state = tx.init(w)
    for _ in range(2):
        u, state = tx.update(jnp.zeros(3), state, w, value=fun(w), grad=jnp.zeros(3), value_fn=fun)
        assert np.all(np.asarray(u) == 0)
    x, info = gradtx.minimize(fun, w, tx, tol=0.0, max_steps=3)  # ||g|| = 0 <= tol: already converged
    assert int(info.num_steps) == 0 and bool(info.converged) and np.all(x == 1.0)


@pytest.mark.parametrize(
    "make, arg",
    [
        (lambda: gradtx.lbfgs(memory_size=0), "memory_size"),
        (lambda: gradtx.scale_by_lbfgs(memory_size=2.5), "memory_size"),
        (lambda: gradtx.scale_by_zoom_linesearch(0), "max_linesearch_steps"),
        (lambda: gradtx.scale_by_zoom_linesearch(slope_rtol=0.0), "slope_rtol"),
        (lambda: gradtx.scale_by_zoom_linesearch(curv_rtol=1.5), "curv_rtol"),
        (lambda: gradtx.scale_by_zoom_linesearch(slope_rtol=0.5, curv_rtol=0.4), "curv_rtol"),
        (lambda: gradtx.scale_by_zoom_linesearch(increase_factor=1.0), "increase_factor"),
        (lambda: gradtx.scale_by_zoom_linesearch(max_learning_rate=0.0), "max_learning_rate"),
        (lambda: gradtx.scale_by_zoom_linesearch(initial_guess_strategy="two"), "initial_guess_strategy"),
        (lambda: gradtx.minimize(jnp.sum, jnp.ones(2), gradtx.lbfgs(), max_steps=-1), "max_steps"),
        (lambda: gradtx.minimize(jnp.sum, jnp.ones(2), gradtx.lbfgs(), tol=-1.0), "tol"),
        (lambda: gradtx.minimize(None, jnp.ones(2), gradtx.lbfgs()), "fun"),
    ],
)
def test_bad_arguments_name_the_argument(make, arg):
    with pytest.raises(ValueError, match=arg):
        make()


def test_missing_extra_args_raise():
    tx = gradtx.lbfgs()
    w = jnp.ones(2)
    with pytest.raises(ValueError, match="value_fn"):
        tx.update(w, tx.init(w), w)
    with pytest.raises(ValueError, match="params"):
        tx.update(w, tx.init(w))
