"""Float64 NumPy reference implementations, written from the papers' equations.

Every reference has the same interface::

    final_params = reference.<name>(params, grads, **hyperparams)

where ``params`` is a pytree of arrays, ``grads`` a list of gradient pytrees
with the same structure, and the keyword names are gradtx's. They are
deliberately naive (loops over steps, one array at a time, float64) so that
each can be checked against its paper by reading it.
"""

from tests.reference.optimizers import (
    adadelta,
    adagrad,
    adam,
    adamax,
    adamw,
    aggmo,
    amsgrad,
    nadam,
    qhadam,
    rmsprop,
    sgd,
)
from tests.reference.transforms import (
    add_decayed_weights,
    clip,
    clip_by_block_norm,
    clip_by_norm,
    scale_by_learning_rate,
)

__all__ = [
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "aggmo",
    "amsgrad",
    "nadam",
    "qhadam",
    "rmsprop",
    "sgd",
    "add_decayed_weights",
    "clip",
    "clip_by_block_norm",
    "clip_by_norm",
    "scale_by_learning_rate",
]
