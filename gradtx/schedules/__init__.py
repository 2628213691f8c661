"""Schedules: pure, jit-able ``step -> value`` functions for any hyperparameter.

Pass one wherever a hyperparameter is accepted, e.g.
``gradtx.adam(gradtx.schedules.warmup_cosine_decay(0.0, 1e-3, 1_000, 100_000))``;
its current value is then ``gradtx.get_hyperparam(state, "learning_rate")``.
Every schedule is a small frozen dataclass: equal arguments give equal,
hashable schedules. The transform that scales updates when a loss stops
improving is :func:`gradtx.reduce_on_plateau`.
"""

from ._cyclic import cosine_onecycle as cosine_onecycle
from ._cyclic import cyclic as cyclic
from ._cyclic import linear_onecycle as linear_onecycle
from ._cyclic import sgdr as sgdr
from ._decay import constant as constant
from ._decay import cosine_decay as cosine_decay
from ._decay import exponential_decay as exponential_decay
from ._decay import inverse_time_decay as inverse_time_decay
from ._decay import linear as linear
from ._decay import polynomial as polynomial
from ._piecewise import join as join
from ._piecewise import piecewise_constant as piecewise_constant
from ._piecewise import piecewise_interpolate as piecewise_interpolate
from ._warmup import rsqrt as rsqrt
from ._warmup import warmup_constant as warmup_constant
from ._warmup import warmup_cosine_decay as warmup_cosine_decay
from ._warmup import warmup_exponential_decay as warmup_exponential_decay
from ._warmup import warmup_stable_decay as warmup_stable_decay
