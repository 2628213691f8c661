"""gradtx: composable, pure gradient transformations for JAX.

Every name below has exactly one public path: ``gradtx.<name>``. Pytree math
lives in :mod:`gradtx.tree`, schedules in :mod:`gradtx.schedules`.
"""

from gradtx import tree as tree
from gradtx._core.base import EmptyState as EmptyState
from gradtx._core.base import GradientTransformation as GradientTransformation
from gradtx._core.base import apply_updates as apply_updates
from gradtx._core.base import chain as chain
from gradtx._core.base import identity as identity
from gradtx._core.base import named_chain as named_chain
from gradtx._core.base import stateless as stateless
from gradtx._core.hyperparams import get_hyperparam as get_hyperparam
from gradtx._core.hyperparams import get_hyperparams as get_hyperparams
from gradtx._core.hyperparams import set_hyperparam as set_hyperparam
from gradtx._optimizers._adam import adam as adam
from gradtx._optimizers._adam import adamax as adamax
from gradtx._optimizers._adam import adamw as adamw
from gradtx._optimizers._adam import amsgrad as amsgrad
from gradtx._optimizers._adam import nadam as nadam
from gradtx._optimizers._adam import qhadam as qhadam
from gradtx._optimizers._adaptive import adadelta as adadelta
from gradtx._optimizers._adaptive import adagrad as adagrad
from gradtx._optimizers._adaptive import rmsprop as rmsprop
from gradtx._optimizers._sgd import aggmo as aggmo
from gradtx._optimizers._sgd import noisy_sgd as noisy_sgd
from gradtx._optimizers._sgd import sgd as sgd
from gradtx._transforms._adam import scale_by_adam as scale_by_adam
from gradtx._transforms._adam import scale_by_adamax as scale_by_adamax
from gradtx._transforms._adam import scale_by_qhadam as scale_by_qhadam
from gradtx._transforms._adaptive import scale_by_adadelta as scale_by_adadelta
from gradtx._transforms._adaptive import scale_by_adagrad as scale_by_adagrad
from gradtx._transforms._adaptive import scale_by_rms as scale_by_rms
from gradtx._transforms._clipping import clip as clip
from gradtx._transforms._clipping import clip_by_block_norm as clip_by_block_norm
from gradtx._transforms._clipping import clip_by_norm as clip_by_norm
from gradtx._transforms._momentum import add_momentum as add_momentum
from gradtx._transforms._momentum import scale_by_aggmo as scale_by_aggmo
from gradtx._transforms._noise import add_noise as add_noise
from gradtx._transforms._scaling import scale as scale
from gradtx._transforms._scaling import scale_by_learning_rate as scale_by_learning_rate
from gradtx._transforms._weight_decay import add_decayed_weights as add_decayed_weights

__version__ = "0.1.0"
