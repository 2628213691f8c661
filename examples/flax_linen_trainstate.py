"""A Flax linen training loop with gradtx: TrainState, parameter groups, a schedule, clipping, Orbax.

gradtx optimizers are ordinary ``tx`` objects for ``flax.training.train_state.TrainState``. This script
trains a small MLP with LayerNorm on scikit-learn's bundled 8x8 digits the way a Flax user writes it,
with the pieces a real run needs:

- parameter groups: AdamW's weight decay on the kernels only, not on biases and LayerNorm scales and
  offsets (``gradtx.adamw(..., mask=...)``, the mask built from the parameter paths);
- a learning-rate schedule (linear warm-up, then cosine decay) that lives in the optimizer state, so
  the jitted step is traced and compiled once although the rate changes every step, and the current
  rate is read from the state for logging (``gradtx.get_hyperparam``);
- gradient clipping by global norm (``gradtx.clip_by_norm`` first in a ``gradtx.chain``);
- Orbax checkpoints of the parameters and of the optimizer state (``gradtx.state_dict``) every
  ``--checkpoint-every`` steps; then a restart: a fresh TrainState restored from the checkpoint
  nearest the middle of the run (``gradtx.load_state_dict``) trains on, and must land on the
  uninterrupted run's parameters exactly.

    python examples/flax_linen_trainstate.py
    python examples/flax_linen_trainstate.py --steps 3000 --checkpoint-every 500

Writes ``<out>/flax_linen_trainstate.png``, ``<out>/flax_linen_trainstate.json`` (the logged numbers)
and the checkpoints under ``<out>/checkpoints/`` (replacing any left there by an earlier run).
"""

from __future__ import annotations

import functools
import shutil
import time
from collections import Counter
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import orbax.checkpoint as ocp
from flax.training.train_state import TrainState
from tqdm.auto import tqdm

import gradtx

matplotlib.use("Agg")  # files only, no display needed
from _common import (  # noqa: E402  (the examples folder is on sys.path when a script runs)
    CompileCounter,
    ResumeSummary,
    Split,
    TrainingCurves,
    accuracy,
    batch_plan,
    cross_entropy,
    load_digits_split,
    mask_paths,
    middle_checkpoint,
    parse_resume_args,
    report_resumed_run,
    tree_max_abs_diff,
)

PEAK_LEARNING_RATE = 1e-3
WEIGHT_DECAY = 0.05
MAX_GRAD_NORM = 1.0
N_FEATURES = 64  # 8x8 pixels


class NormMLP(nn.Module):
    """Dense -> LayerNorm -> ReLU blocks and a Dense head: kernels, biases and LayerNorm scales/offsets."""

    hidden: Sequence[int]
    n_classes: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden:
            x = nn.relu(nn.LayerNorm()(nn.Dense(width)(x)))
        return nn.Dense(self.n_classes)(x)


MODEL = NormMLP(hidden=(128, 64), n_classes=10)
TRACES: Counter[str] = Counter()


def decay_mask(params):
    """True for the kernels (weight matrices); biases and LayerNorm scales/offsets get no weight decay.

    A function of the parameters, so gradtx builds the mask from whatever tree it is given.
    """
    return jax.tree_util.tree_map_with_path(
        lambda path, _: jax.tree_util.keystr(path).endswith("['kernel']"), params
    )


def make_optimizer(steps: int) -> gradtx.GradientTransformation:
    schedule = gradtx.schedules.warmup_cosine_decay(
        init_value=0.0, peak_value=PEAK_LEARNING_RATE, warmup_steps=max(1, steps // 10), decay_steps=steps
    )
    return gradtx.chain(
        gradtx.clip_by_norm(MAX_GRAD_NORM),
        gradtx.adamw(schedule, weight_decay=WEIGHT_DECAY, mask=decay_mask),
    )


@functools.partial(jax.jit, static_argnums=1)
def create_train_state(key: jax.Array, tx: gradtx.GradientTransformation) -> TrainState:
    """A new TrainState, jitted: one compiled program rather than one per operation of the init.

    ``tx`` can be a static argument because gradtx optimizers are hashable values: the restarted run's
    equal optimizer, built anew, finds this compiled program in the cache.
    """
    params = MODEL.init(key, jnp.zeros((1, N_FEATURES)))
    return TrainState.create(apply_fn=MODEL.apply, params=params, tx=tx)


def on_device(state: TrainState) -> TrainState:
    """``state`` with every array committed to the default device, the step number included.

    Orbax restores arrays committed to a device. Committing the fresh state too gives the uninterrupted
    and the restored state the same signature, so they share one compiled step (docs/checkpointing.md).
    """
    return jax.device_put(state, jax.devices()[0])


@jax.jit
def train_step(state: TrainState, x: jax.Array, y: jax.Array) -> tuple[TrainState, jax.Array, jax.Array]:
    TRACES["train_step"] += 1  # Python runs this only while jax traces the step, not when it runs

    def loss_fn(params) -> jax.Array:
        return cross_entropy(state.apply_fn(params, x), y)

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    learning_rate = gradtx.get_hyperparam(state.opt_state, "learning_rate")  # what this update uses
    return state.apply_gradients(grads=grads), loss, learning_rate


@jax.jit
def evaluate(params, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    logits = MODEL.apply(params, x)
    return cross_entropy(logits, y), accuracy(logits, y)


def checkpoint_items(state: TrainState) -> dict:
    """What a checkpoint holds: the parameters and gradtx's flat dict of the optimizer state.

    The step is the checkpoint's number; ``apply_fn`` and ``tx`` are code, rebuilt by the restarted run.
    """
    return {"params": state.params, "opt_state": gradtx.state_dict(state.opt_state)}


def restore(manager: ocp.CheckpointManager, step: int, fresh: TrainState) -> TrainState:
    """``fresh`` with its step, parameters and optimizer state replaced by checkpoint ``step``."""
    target = jax.eval_shape(checkpoint_items, fresh)  # the same dict, abstract: shapes and dtypes only
    restored = manager.restore(step, args=ocp.args.StandardRestore(target))
    opt_state = gradtx.load_state_dict(fresh.tx, restored["params"], restored["opt_state"])
    return on_device(fresh.replace(step=step, params=restored["params"], opt_state=opt_state))


def train(
    state: TrainState,
    data: Split,
    plan: np.ndarray,
    start: int,
    eval_every: int,
    bar: tqdm,
    manager: ocp.CheckpointManager | None = None,
    checkpoint_every: int = 0,
) -> tuple[TrainState, TrainingCurves]:
    """Steps ``start + 1`` to ``len(plan)``; a checkpoint every ``checkpoint_every`` steps if ``manager``."""
    batch_losses, learning_rates, evals = [], [], []

    def record(step: int) -> None:
        train_loss, _ = evaluate(state.params, data.x_train, data.y_train)
        _, val_acc = evaluate(state.params, data.x_val, data.y_val)
        evals.append((step, float(train_loss), float(val_acc)))
        bar.set_postfix(loss=f"{evals[-1][1]:.3f}", val_acc=f"{evals[-1][2]:.1%}")

    record(start)
    for t in range(start + 1, len(plan) + 1):
        idx = plan[t - 1]
        state, loss, learning_rate = train_step(state, data.x_train[idx], data.y_train[idx])
        batch_losses.append(loss)  # left on the device: no sync, the next steps dispatch ahead
        learning_rates.append(learning_rate)
        if manager is not None and t % checkpoint_every == 0:
            manager.save(t, args=ocp.args.StandardSave(checkpoint_items(state)))  # written in the background
        if t % eval_every == 0 or t == len(plan):
            record(t)
        bar.update()

    eval_steps, train_losses, val_accuracies = (np.asarray(column) for column in zip(*evals, strict=True))
    curves = TrainingCurves(
        np.arange(start + 1, len(plan) + 1),
        np.asarray(jax.device_get(batch_losses)),
        np.asarray(jax.device_get(learning_rates)),
        eval_steps,
        train_losses,
        val_accuracies,
    )
    return state, curves


def main(argv: Sequence[str] | None = None) -> ResumeSummary:
    args = parse_resume_args(__doc__.split("\n\n")[0], argv)
    data = load_digits_split(args.seed)
    if not 0 < args.batch_size <= len(data.y_train):
        raise SystemExit(f"--batch-size must be in [1, {len(data.y_train)}]")
    plan = batch_plan(args.seed, len(data.y_train), args.batch_size, args.steps)
    resume_step = middle_checkpoint(args.steps, args.checkpoint_every)
    eval_every = max(1, args.steps // 100)
    print(
        f"digits: {len(data.y_train)} train / {len(data.y_val)} val images; MLP 64-128-64-10 with LayerNorm; "
        f"{args.steps} steps of batch {args.batch_size}; seed {args.seed}; JAX on {jax.default_backend()}"
    )

    tx = make_optimizer(args.steps)
    state = on_device(create_train_state(jax.random.key(args.seed), tx))
    checkpoint_dir = (args.out / "checkpoints").resolve()
    shutil.rmtree(checkpoint_dir, ignore_errors=True)  # Orbax will not overwrite the steps of an earlier run
    compiles = CompileCounter("train_step")
    start = time.perf_counter()
    with (
        ocp.CheckpointManager(checkpoint_dir) as manager,
        tqdm(total=2 * args.steps - resume_step, unit="step", dynamic_ncols=True) as bar,
    ):
        bar.set_description("uninterrupted")
        state, full = train(state, data, plan, 0, eval_every, bar, manager, args.checkpoint_every)
        manager.wait_until_finished()

        # The restart: everything rebuilt from code (from another seed, so that every value must come
        # from the checkpoint), then the checkpoint loaded into it.
        bar.set_description(f"restarted at {resume_step}")
        fresh = on_device(create_train_state(jax.random.key(args.seed + 1), make_optimizer(args.steps)))
        restarted = restore(manager, resume_step, fresh)
        restarted, resumed = train(restarted, data, plan, resume_step, eval_every, bar)
        checkpoints = list(manager.all_steps())

    decayed, not_decayed = mask_paths(decay_mask(state.params))
    summary = ResumeSummary(
        final_train_loss=float(full.train_losses[-1]),
        final_val_accuracy=float(full.val_accuracies[-1]),
        final_learning_rate=float(gradtx.get_hyperparam(state.opt_state, "learning_rate")),
        peak_learning_rate=PEAK_LEARNING_RATE,
        decayed=decayed,
        not_decayed=not_decayed,
        checkpoint_dir=str(checkpoint_dir),
        checkpoints=checkpoints,
        resume_step=resume_step,
        steps=args.steps,
        params_max_abs_diff=tree_max_abs_diff(state.params, restarted.params),
        opt_state_max_abs_diff=tree_max_abs_diff(
            gradtx.state_dict(state.opt_state), gradtx.state_dict(restarted.opt_state)
        ),
        batch_loss_max_abs_diff=tree_max_abs_diff(full.batch_losses[resume_step:], resumed.batch_losses),
        traces=TRACES["train_step"],
        compiles=compiles.count,
        seconds=time.perf_counter() - start,
    )

    settings = {
        "steps": args.steps,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "checkpoint_every": args.checkpoint_every,
        "weight_decay": WEIGHT_DECAY,
        "max_grad_norm": MAX_GRAD_NORM,
    }
    report_resumed_run(
        args.out,
        "flax_linen_trainstate",
        "Flax linen TrainState",
        summary,
        full,
        resumed,
        checkpoints,
        settings,
    )
    return summary


if __name__ == "__main__":
    main()
