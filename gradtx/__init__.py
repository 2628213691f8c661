"""gradtx: composable, pure gradient transformations for JAX.

Every name below has exactly one public path: ``gradtx.<name>``. Pytree math
lives in :mod:`gradtx.tree`, schedules in :mod:`gradtx.schedules`.
"""

from gradtx import schedules as schedules
from gradtx import tree as tree
from gradtx._core.base import EmptyState as EmptyState
from gradtx._core.base import GradientTransformation as GradientTransformation
from gradtx._core.base import apply_updates as apply_updates
from gradtx._core.base import chain as chain
from gradtx._core.base import identity as identity
from gradtx._core.base import named_chain as named_chain
from gradtx._core.base import stateless as stateless
from gradtx._core.checkpoint import load_state_dict as load_state_dict
from gradtx._core.checkpoint import state_dict as state_dict
from gradtx._core.hyperparams import get_hyperparam as get_hyperparam
from gradtx._core.hyperparams import get_hyperparams as get_hyperparams
from gradtx._core.hyperparams import set_hyperparam as set_hyperparam
from gradtx._core.step import make_step as make_step
from gradtx._core.quantize import QuantizedArray as QuantizedArray
from gradtx._core.quantize import QuantizedDtype as QuantizedDtype
from gradtx._core.quantize import dequantize as dequantize
from gradtx._core.quantize import quantize as quantize
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
from gradtx._wrappers._accumulate import accumulate as accumulate
from gradtx._wrappers._ema import averaged_params as averaged_params
from gradtx._wrappers._ema import ema_params as ema_params
from gradtx._wrappers._ema import swa as swa
from gradtx._wrappers._finite import apply_if_finite as apply_if_finite
from gradtx._wrappers._finite import zero_nans as zero_nans
from gradtx._wrappers._lookahead import lookahead as lookahead
from gradtx._wrappers._lookahead import slow_params as slow_params
from gradtx._wrappers._loss_scale import dynamic_loss_scale as dynamic_loss_scale
from gradtx._wrappers._loss_scale import loss_scale as loss_scale
from gradtx._wrappers._monitor import monitor as monitor
from gradtx._wrappers._monitor import monitor_stats as monitor_stats
from gradtx._wrappers._partition import freeze as freeze
from gradtx._wrappers._partition import masked as masked
from gradtx._wrappers._partition import partition as partition
from gradtx.schedules._plateau import reduce_on_plateau as reduce_on_plateau

__version__ = "0.1.0"
