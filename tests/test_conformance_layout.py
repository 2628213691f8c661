"""Every registry entry: the registry is complete, bad arguments are rejected, edge-case trees work,
abstract ``init`` matches concrete ``init``, and state layouts match the golden file.

The golden file ``tests/golden/state_layouts.json`` records, for every
configuration, the (path, shape, dtype) of each state leaf after ``init`` on the
standard parameters. An accidental change of a state layout (which would break
users' checkpoints) fails here; a deliberate one is recorded by regenerating::

    GRADTX_REGEN_GOLDEN=1 python -m pytest tests/test_conformance_layout.py -n 0

and committing the diff, which then shows the layout change in review.
"""

from __future__ import annotations

import inspect
import json
import os
import pathlib

import jax
import jax.numpy as jnp
import pytest

import gradtx
from tests.conformance import (
    assert_finite,
    gradient,
    leaf_types,
    loss,
    make_params,
    rel_error,
    run,
    shapes_for,
)
from tests.registry import REGISTRY, configs

CONFIGS = [pytest.param(name, build, id=f"{name}-{i}") for name, i, build in configs()]
BAD = [
    pytest.param(bad, id=f"{name}-{i}") for name, entry in REGISTRY.items() for i, bad in enumerate(entry.bad)
]
GOLDEN = pathlib.Path(__file__).parent / "golden" / "state_layouts.json"
REGENERATE = os.environ.get("GRADTX_REGEN_GOLDEN") == "1"


def public_transformations() -> list[str]:
    """Every public ``gradtx`` callable annotated to return a GradientTransformation."""
    names = []
    for name in dir(gradtx):
        obj = getattr(gradtx, name)
        if name.startswith("_") or not callable(obj) or isinstance(obj, type):
            continue
        if inspect.signature(obj, eval_str=True).return_annotation is gradtx.GradientTransformation:
            names.append(name)
    return names


def test_registry_covers_every_public_transformation():
    public = set(public_transformations())
    assert len(public) >= 80, sorted(public)
    missing = sorted(public - set(REGISTRY))
    assert not missing, f"public transformations missing from tests/registry.py: {missing}"
    stale = sorted(set(REGISTRY) - public)
    assert not stale, f"registry entries that are not public transformations: {stale}"


def test_every_optimizer_and_parametrised_transform_has_bad_argument_cases():
    for entry in REGISTRY.values():
        if entry.kind == "optimizer":
            assert entry.bad, f"{entry.name}: an optimizer without bad-argument cases"


@pytest.mark.parametrize("bad", BAD)
def test_bad_arguments_raise_the_registered_error(bad):
    with pytest.raises(bad.error, match=bad.match):
        tx = bad.build()
        # Some errors can only be seen once the parameters are known.
        if isinstance(tx, gradtx.GradientTransformation):
            tx.init(make_params({"x": (2,), "y": (2,)}))


def _extra(entry, params, grads):
    return dict(value=loss(params), grad=grads, value_fn=loss) if entry.needs_value else {}


@pytest.mark.parametrize("name, build", CONFIGS)
def test_update_without_params(name, build, request):
    """Without params an update either raises a ValueError that says params are needed or is unchanged.

    A ``needs_params`` entry's typical configuration must raise (others, such as
    an optimizer with weight decay switched on, may too).
    """
    entry, tx = REGISTRY[name], build()
    params = make_params(shapes_for(entry))
    grads, state = gradient(params), tx.init(params)
    extra = _extra(entry, params, grads)
    with_params = tx.update(grads, state, params, **extra)
    try:
        without = tx.update(grads, state, **extra)
    except ValueError as error:
        assert "params" in str(error) or "parameters" in str(error), f"{name}: unclear error {error}"
        return
    assert not (entry.needs_params and request.node.callspec.id.endswith("-0")), f"{name} ran without params"
    assert rel_error(without, with_params) == 0, f"{name}: the update depends on params but runs without them"


def _edge_trees(entry):
    if entry.matrices_only:
        return {
            "empty dict": {},
            "empty list": [],
            "None leaves": {"w": (3, 4), "skip": None, "more": [None, (2, 5)]},
            "zero-size leaves": {"w": (3, 4), "empty": (0, 4), "empty2": (3, 0)},
        }
    return {
        "empty dict": {},
        "empty list": [],
        "None leaves": {"w": (3,), "skip": None, "more": [None, (2, 2)]},
        "0-d leaves": {"a": (), "b": ()},
        "zero-size leaves": {"w": (3,), "empty": (0,), "empty2": (2, 0)},
    }


EDGE_KINDS = ["empty dict", "empty list", "None leaves", "0-d leaves", "zero-size leaves"]


# An empty tree leaves partition's groups empty, which it warns about; that is expected here.
@pytest.mark.filterwarnings("ignore:partition. no parameter is labelled")
@pytest.mark.parametrize("tree", EDGE_KINDS)
@pytest.mark.parametrize("name, build", CONFIGS)
def test_edge_case_trees(name, build, tree):
    """Empty trees, None leaves, scalars, zero-size leaves: init, three jitted steps, finite, same layout."""
    entry = REGISTRY[name]
    trees = _edge_trees(entry)
    if tree not in trees:
        pytest.skip(f"{name} acts on matrices only")
    params = make_params(trees[tree])
    tx = build()
    state = tx.init(params)
    final, final_state = run(entry, tx, params, 3)
    assert jax.tree.structure(final) == jax.tree.structure(params)
    assert leaf_types(final) == leaf_types(params)
    assert leaf_types(final_state) == leaf_types(state)
    assert_finite(final, f"{name} {tree} params")
    assert_finite(final_state, f"{name} {tree} state", like=state)
    if tree == "None leaves":
        assert final["skip"] is None and final["more"][0] is None


def abstract_types(tree):
    return [
        (jax.tree_util.keystr(path), tuple(x.shape), str(x.dtype))
        for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]


@pytest.mark.parametrize("name, build", CONFIGS)
def test_abstract_init_matches_concrete_init(name, build):
    """``jax.eval_shape(tx.init, ShapeDtypeStructs)`` has the structure, shapes and dtypes of ``tx.init``."""
    entry, tx = REGISTRY[name], build()
    params = make_params(shapes_for(entry), lambda i: jnp.bfloat16 if i == 0 else jnp.float32)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    shaped = jax.eval_shape(tx.init, abstract)
    concrete = tx.init(params)
    assert jax.tree.structure(shaped) == jax.tree.structure(concrete)
    assert abstract_types(shaped) == leaf_types(concrete)


def _layout(build, entry):
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), make_params(shapes_for(entry), jnp.float32)
    )
    return [
        f"{path} {list(shape)} {dtype}"
        for path, shape, dtype in abstract_types(jax.eval_shape(build().init, abstract))
    ]


def _all_layouts() -> dict[str, list]:
    return {f"{name}-{i}": _layout(build, REGISTRY[name]) for name, i, build in configs()}


@pytest.fixture(scope="module")
def golden() -> dict[str, list]:
    if REGENERATE:
        if jax.config.jax_enable_x64:
            pytest.fail("regenerate the golden layouts in the default 32-bit mode, without JAX_ENABLE_X64")
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(_all_layouts(), indent=1, sort_keys=True) + "\n")
    assert GOLDEN.exists(), f"{GOLDEN} is missing: regenerate it (see this module's docstring)"
    return json.loads(GOLDEN.read_text())


def test_golden_file_has_exactly_the_registry_configurations(golden):
    ids = {f"{name}-{i}" for name, i, _ in configs()}
    assert not ids - set(golden), f"configurations missing from the golden file: {sorted(ids - set(golden))}"
    assert not set(golden) - ids, f"stale golden entries: {sorted(set(golden) - ids)}"


@pytest.mark.parametrize("name, build", CONFIGS)
def test_state_layout_matches_golden_file(name, build, request, golden, no_x64):
    """The golden layouts are those of the default (32-bit) mode, also checked in an x64 run."""
    key = request.node.callspec.id
    if key not in golden:
        pytest.fail(f"{key} is not in {GOLDEN.name}: regenerate it (see this module's docstring)")
    actual = _layout(build, REGISTRY[name])
    assert actual == golden[key], (
        f"{key}: the state layout changed. If that is deliberate, regenerate {GOLDEN.name} "
        "(see this module's docstring) and commit it."
    )


def test_golden_check_can_fail(golden, no_x64):
    """A state layout with one leaf's dtype changed does not match its golden entry."""
    assert any(line.endswith(" float32") for line in golden["adam-0"])
    assert _layout(lambda: gradtx.adam(1e-2, mu_dtype=jnp.bfloat16), REGISTRY["adam"]) != golden["adam-0"]
