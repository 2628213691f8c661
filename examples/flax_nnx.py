"""A Flax NNX training loop with gradtx: nnx.Optimizer, parameter groups, a schedule, clipping, Orbax.

gradtx optimizers go into ``nnx.Optimizer(model, tx, wrt=nnx.Param)`` as they are. This script trains
a small MLP with LayerNorm (``nnx.Linear``, ``nnx.LayerNorm``) on scikit-learn's bundled 8x8 digits
the way an NNX user writes it, with the pieces a real run needs:

- parameter groups: AdamW's weight decay on the kernels only, not on biases and LayerNorm scales and
  offsets (``gradtx.adamw(..., mask=...)``, the mask built from the parameter paths);
- a learning-rate schedule (linear warm-up, then cosine decay) that lives in the optimizer state, so
  the ``nnx.jit`` step is traced and compiled once although the rate changes every step, and the
  current rate is read from the state for logging (``gradtx.get_hyperparam``);
- gradient clipping by global norm (``gradtx.clip_by_norm`` first in a ``gradtx.chain``);
- Orbax checkpoints of the parameters and of the optimizer state (``gradtx.state_dict``) every
  ``--checkpoint-every`` steps; then a restart: a fresh model and optimizer restored from the
  checkpoint nearest the middle of the run (``gradtx.load_state_dict``) train on, and must land on
  the uninterrupted run's parameters exactly.

One NNX detail: ``nnx.Optimizer`` keeps gradtx's state in ``optimizer.opt_state`` with every array
wrapped in an ``nnx.Variable``. gradtx's functions read plain arrays, so hand them
``nnx.as_pure(optimizer.opt_state)``.

    python examples/flax_nnx.py
    python examples/flax_nnx.py --steps 3000 --checkpoint-every 500

Writes ``<out>/flax_nnx.png``, ``<out>/flax_nnx.json`` (the logged numbers) and the checkpoints under
``<out>/checkpoints/`` (replacing any left there by an earlier run).
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Sequence

import flax.nnx as nnx
import jax
import matplotlib
import numpy as np
import orbax.checkpoint as ocp
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
LAYER_SIZES = (64, 128, 64, 10)
TRACES: Counter[str] = Counter()


class NormMLP(nnx.Module):
    """Linear -> LayerNorm -> ReLU blocks and a Linear head: kernels, biases and LayerNorm scales/offsets."""

    def __init__(self, sizes: Sequence[int], *, rngs: nnx.Rngs) -> None:
        widths = list(zip(sizes[:-1], sizes[1:], strict=True))
        self.hidden = nnx.List([nnx.Linear(n_in, n_out, rngs=rngs) for n_in, n_out in widths[:-1]])
        self.norms = nnx.List([nnx.LayerNorm(n_out, rngs=rngs) for _, n_out in widths[:-1]])
        self.head = nnx.Linear(*widths[-1], rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        for linear, norm in zip(self.hidden, self.norms, strict=True):
            x = nnx.relu(norm(linear(x)))
        return self.head(x)


def decay_mask(params):
    """True for the kernels (weight matrices); biases and LayerNorm scales/offsets get no weight decay.

    A function of the parameters: gradtx calls it with the plain arrays that ``nnx.Optimizer.update``
    passes, so it fits them whatever the nesting of the model.
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


@nnx.jit(static_argnums=1)
def create_model_and_optimizer(
    key: jax.Array, tx: gradtx.GradientTransformation
) -> tuple[NormMLP, nnx.Optimizer]:
    """A new model and optimizer, jitted: one compiled program rather than one per operation of the init.

    ``tx`` can be a static argument because gradtx optimizers are hashable values: the restarted run's
    equal optimizer, built anew, finds this compiled program in the cache.
    """
    model = NormMLP(LAYER_SIZES, rngs=nnx.Rngs(key))
    return model, nnx.Optimizer(model, tx, wrt=nnx.Param)


def commit_to_device(*nodes: nnx.Module | nnx.Optimizer) -> None:
    """Commits every array of ``nodes`` to the default device, in place.

    Orbax restores arrays committed to a device. Committing the fresh ones too gives the uninterrupted
    and the restored run the same signature, so they share one compiled step (docs/checkpointing.md).
    """
    for node in nodes:
        nnx.update(node, jax.device_put(nnx.state(node), jax.devices()[0]))


def current_learning_rate(optimizer: nnx.Optimizer) -> jax.Array:
    """The rate the next update uses: gradtx reads the plain arrays inside the optimizer's Variables."""
    return gradtx.get_hyperparam(nnx.as_pure(optimizer.opt_state), "learning_rate")


@nnx.jit
def train_step(
    model: NormMLP, optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array
) -> tuple[jax.Array, jax.Array]:
    TRACES["train_step"] += 1  # Python runs this only while jax traces the step, not when it runs

    def loss_fn(model: NormMLP) -> jax.Array:
        return cross_entropy(model(x), y)

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    learning_rate = current_learning_rate(optimizer)  # what this update uses
    optimizer.update(model, grads)  # updates the model's parameters and the optimizer state in place
    return loss, learning_rate


@nnx.jit
def evaluate(model: NormMLP, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    logits = model(x)
    return cross_entropy(logits, y), accuracy(logits, y)


def checkpoint_items(model: NormMLP, optimizer: nnx.Optimizer) -> dict:
    """What a checkpoint holds: the parameters and gradtx's flat dict of the optimizer state.

    Both as plain arrays (``to_pure_dict``, ``nnx.as_pure``): a checkpoint of ``nnx.Variable``s would
    carry their wrapping, and gradtx's keys would gain a ``.value`` that ``load_state_dict`` rejects.
    The step is the checkpoint's number; the model and ``tx`` are code, rebuilt by the restarted run.
    """
    return {
        "params": nnx.state(model, nnx.Param).to_pure_dict(),
        "opt_state": gradtx.state_dict(nnx.as_pure(optimizer.opt_state)),
    }


def restore(manager: ocp.CheckpointManager, step: int, model: NormMLP, optimizer: nnx.Optimizer) -> None:
    """Loads checkpoint ``step`` into ``model`` and ``optimizer``, in place."""
    params = nnx.state(model, nnx.Param)
    target = {  # the saved dict, abstract: shapes and dtypes only
        "params": jax.eval_shape(params.to_pure_dict),
        "opt_state": gradtx.state_dict(jax.eval_shape(optimizer.tx.init, nnx.as_pure(params))),
    }
    restored = manager.restore(step, args=ocp.args.StandardRestore(target))
    nnx.replace_by_pure_dict(params, restored["params"])
    nnx.update(model, params)
    opt_state = gradtx.load_state_dict(optimizer.tx, nnx.as_pure(params), restored["opt_state"])
    nnx.update(optimizer.opt_state, nnx.state(opt_state))  # as nnx.Optimizer.update itself does
    optimizer.step[...] = step  # NNX's own step counter; gradtx's count came with the optimizer state


def train(
    model: NormMLP,
    optimizer: nnx.Optimizer,
    data: Split,
    plan: np.ndarray,
    start: int,
    eval_every: int,
    bar: tqdm,
    manager: ocp.CheckpointManager | None = None,
    checkpoint_every: int = 0,
) -> TrainingCurves:
    """Steps ``start + 1`` to ``len(plan)``; a checkpoint every ``checkpoint_every`` steps if ``manager``."""
    batch_losses, learning_rates, evals = [], [], []

    def record(step: int) -> None:
        train_loss, _ = evaluate(model, data.x_train, data.y_train)
        _, val_acc = evaluate(model, data.x_val, data.y_val)
        evals.append((step, float(train_loss), float(val_acc)))
        bar.set_postfix(loss=f"{evals[-1][1]:.3f}", val_acc=f"{evals[-1][2]:.1%}")

    record(start)
    for t in range(start + 1, len(plan) + 1):
        idx = plan[t - 1]
        loss, learning_rate = train_step(model, optimizer, data.x_train[idx], data.y_train[idx])
        batch_losses.append(loss)  # left on the device: no sync, the next steps dispatch ahead
        learning_rates.append(learning_rate)
        if manager is not None and t % checkpoint_every == 0:
            items = checkpoint_items(model, optimizer)
            manager.save(t, args=ocp.args.StandardSave(items))  # written in the background
        if t % eval_every == 0 or t == len(plan):
            record(t)
        bar.update()

    eval_steps, train_losses, val_accuracies = (np.asarray(column) for column in zip(*evals, strict=True))
    return TrainingCurves(
        np.arange(start + 1, len(plan) + 1),
        np.asarray(jax.device_get(batch_losses)),
        np.asarray(jax.device_get(learning_rates)),
        eval_steps,
        train_losses,
        val_accuracies,
    )


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

    model, optimizer = create_model_and_optimizer(jax.random.key(args.seed), make_optimizer(args.steps))
    commit_to_device(model, optimizer)
    checkpoint_dir = (args.out / "checkpoints").resolve()
    shutil.rmtree(checkpoint_dir, ignore_errors=True)  # Orbax will not overwrite the steps of an earlier run
    compiles = CompileCounter("train_step")
    start = time.perf_counter()
    with (
        ocp.CheckpointManager(checkpoint_dir) as manager,
        tqdm(total=2 * args.steps - resume_step, unit="step", dynamic_ncols=True) as bar,
    ):
        bar.set_description("uninterrupted")
        full = train(model, optimizer, data, plan, 0, eval_every, bar, manager, args.checkpoint_every)
        manager.wait_until_finished()

        # The restart: everything rebuilt from code (from another seed, so that every value must come
        # from the checkpoint), then the checkpoint loaded into it.
        bar.set_description(f"restarted at {resume_step}")
        restarted_model, restarted_optimizer = create_model_and_optimizer(
            jax.random.key(args.seed + 1), make_optimizer(args.steps)
        )
        commit_to_device(restarted_model, restarted_optimizer)
        restore(manager, resume_step, restarted_model, restarted_optimizer)
        resumed = train(restarted_model, restarted_optimizer, data, plan, resume_step, eval_every, bar)
        checkpoints = list(manager.all_steps())

    final = checkpoint_items(model, optimizer)
    restarted = checkpoint_items(restarted_model, restarted_optimizer)
    decayed, not_decayed = mask_paths(decay_mask(nnx.as_pure(nnx.state(model, nnx.Param))))
    summary = ResumeSummary(
        final_train_loss=float(full.train_losses[-1]),
        final_val_accuracy=float(full.val_accuracies[-1]),
        final_learning_rate=float(current_learning_rate(optimizer)),
        peak_learning_rate=PEAK_LEARNING_RATE,
        decayed=decayed,
        not_decayed=not_decayed,
        checkpoint_dir=str(checkpoint_dir),
        checkpoints=checkpoints,
        resume_step=resume_step,
        steps=args.steps,
        params_max_abs_diff=tree_max_abs_diff(final["params"], restarted["params"]),
        opt_state_max_abs_diff=tree_max_abs_diff(final["opt_state"], restarted["opt_state"]),
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
        args.out, "flax_nnx", "Flax NNX Optimizer", summary, full, resumed, checkpoints, settings
    )
    return summary


if __name__ == "__main__":
    main()
