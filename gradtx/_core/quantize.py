"""8-bit block-wise quantisation of optimizer state (Dettmers et al., ICLR 2022).

A tensor is cut into blocks of ``block_size`` consecutive elements (of its
flattened form; the tail block may be shorter). Each block keeps its absolute
maximum as a float32 scale, and each element the 8-bit index of the entry of
the *dynamic (tree) quantisation map* nearest to ``element / scale``. The map
spends its 256 values on seven decades, 1e-6 to 1, with more fraction values
in the larger decades, so both small and large magnitudes keep a bounded
error relative to the block maximum.

Two maps: the *signed* one (first moments, momentum) and the *unsigned* one
(second moments, which are never negative) spending all 8 bits on magnitude.
The dtype of the codes tells which: ``int8`` codes index the signed map,
``uint8`` codes the unsigned one.

One departure from plain nearest rounding: the unsigned map rounds a positive
value below half its smallest entry (1.6e-7 of the block maximum) *up* to that
entry instead of down to 0. A second moment stored as 0 makes Adam's next step
about ``m / sqrt((1 - b2) g**2)``, some 30 times too large; on an
ill-conditioned quadratic whose gradients span more decades than the map,
nearest rounding made 8-bit Adam diverge where this rule tracks float32 Adam
within 3%. This is the "zero-point problem" of Li, Chen & Zhu, "Memory
Efficient Optimizers with 4-bit States", NeurIPS 2023. The error stays below
the map's bound, and exact zeros (fresh state) stay 0.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._core.numerics import compute_dtype

_DECADES = 7  # the map covers 1e-6 .. 1


def _slots(signed: bool, decade: int) -> int:
    """How many values decade ``decade`` holds on one side of 0."""
    return 2**decade if signed else 2 ** (decade + 1)


@functools.cache
def _decade_factors(signed: bool) -> np.ndarray:
    """``10**(i-7) / (2 * slots)`` per decade ``i``, in float32: see :func:`_map_magnitudes`."""
    factors = np.array([10.0 ** (i - _DECADES) / (2 * _slots(signed, i)) for i in range(_DECADES)])
    factors = factors.astype(np.float32)
    factors.setflags(write=False)  # cached: shared by every call
    return factors


def _map_magnitudes(signed: bool) -> np.ndarray:
    """The map's positive values below 1, sorted (127 signed, 254 unsigned).

    Decade ``i`` (values ``10**(i-6) * [0.1, 1]``) holds the midpoints of
    ``c = slots`` equal slices of [0.1, 1]: ``10**(i-6) * (0.1 + 0.9 (s + 1/2) / c)``
    for slot ``s``, which is ``(2c + 9 + 18 s) * 10**(i-7) / (2c)``: a small
    integer times a per-decade factor. Computed as that float32 product, one
    rounding, which the gather-free decoder reproduces bit for bit.
    """
    factors = _decade_factors(signed)
    out = []
    for i in range(_DECADES):
        c = _slots(signed, i)
        out.append((2 * c + 9 + 18 * np.arange(c)).astype(np.float32) * factors[i])
    return np.concatenate(out)


def _dynamic_map(signed: bool) -> np.ndarray:
    """The 256 sorted values of the dynamic quantisation map (bitsandbytes' ``create_dynamic_map``).

    Decade ``i`` (values ``10**(i-6) * [0.1, 1]``) holds ``2**i`` values per sign
    when signed and ``2**(i+1)`` when unsigned: the midpoints of that many equal
    slices of [0.1, 1]. Adding 0 and 1 makes 256 values.
    """
    m = _map_magnitudes(signed)
    parts = [-m[::-1], [0.0], m, [1.0]] if signed else [[0.0], m, [1.0]]
    table = np.concatenate(parts).astype(np.float32)
    assert table.shape == (256,) and np.all(np.diff(table) > 0)
    return table


SIGNED_MAP = _dynamic_map(signed=True)
UNSIGNED_MAP = _dynamic_map(signed=False)
_CODE_DTYPE = {True: jnp.int8, False: jnp.uint8}
# Codes of the map's special values: 0 and 1.
_ZERO_CODE = {True: -1, False: 0}
_ONE_CODE = {True: 127, False: 255}


class QuantizedArray(NamedTuple):
    """An array stored as 8-bit codes and one float32 scale per block.

    A plain NamedTuple of two arrays, so it goes through ``jit``, ``vmap``,
    ``lax.scan`` and checkpointing like any pytree. Everything needed to
    decode it is in the arrays' shapes and dtypes:

    Attributes:
        codes: ``int8`` (signed map) or ``uint8`` (unsigned map) indices, in
            the shape of the original array.
        scales: float32 absolute maximum of each block, shape ``(num_blocks,)``.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> q = gradtx.quantize(jnp.ones((3, 100)), signed=False)
        >>> q.codes.shape, q.codes.dtype, q.scales.shape, q.block_size
        ((3, 100), dtype('uint8'), (2,), 256)
    """

    codes: jax.Array
    scales: jax.Array

    @property
    def signed(self) -> bool:
        """Whether the codes index the signed map."""
        return jnp.dtype(self.codes.dtype) == jnp.int8

    @property
    def block_size(self) -> int:
        """The block size, recovered from the shapes (block sizes are powers of two)."""
        return _infer_block_size(math.prod(self.codes.shape), self.scales.shape[0])


def _num_blocks(size: int, block_size: int) -> int:
    return -(-size // block_size)


def _infer_block_size(size: int, num_blocks: int) -> int:
    # For powers of two B < B', ceil(n/B) == ceil(n/B') only when both are <= 1,
    # and one block covers the whole array whatever its nominal size: the
    # smallest power of two that holds it stands for all of them.
    block = 1
    while _num_blocks(size, block) > num_blocks:
        block *= 2
    if _num_blocks(size, block) != num_blocks:
        raise ValueError(f"QuantizedArray: {num_blocks} scales do not fit {size} codes")
    return block


def _check_block_size(block_size: Any) -> None:
    if not isinstance(block_size, int) or block_size < 1 or block_size & (block_size - 1):
        raise ValueError(f"block_size must be a power of two, got {block_size!r}")


def quantize(x: jax.Array, signed: bool = True, block_size: int = 256) -> QuantizedArray:
    """Block-wise 8-bit quantisation with the dynamic (tree) map.

    Each block of ``block_size`` consecutive elements (of ``x`` flattened) is
    divided by its absolute maximum and each element replaced by the index
    of the nearest map value. The error of an element is at most 0.0071
    (signed map) or 0.0036 (unsigned map) times its block's maximum. An
    all-zero block has scale 0 and decodes to zeros; a NaN poisons its
    block only.

    Args:
        x: a real array of any shape.
        signed: use the signed map (for values of either sign); the unsigned
            map clips negative values to 0, is twice as fine, and never rounds
            a positive value to 0.
        block_size: elements per block, a power of two (256, as bitsandbytes'
            8-bit optimizers, costs 4 / 256 bytes of scale per element).

    Returns:
        A :class:`QuantizedArray` with ``int8`` codes (signed) or ``uint8`` codes.

    References:
        Dettmers, Lewis, Shleifer & Zettlemoyer, "8-bit Optimizers via
        Block-wise Quantization", ICLR 2022.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> q = gradtx.quantize(jnp.array([0.5, -2.0, 0.0, 0.01]))
        >>> q.scales
        Array([2.], dtype=float32)
        >>> gradtx.dequantize(q)
        Array([ 0.4953125, -1.9859375,  0.       ,  0.0104375], dtype=float32)
    """
    x = jnp.asarray(x)
    if not (jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.integer)):
        raise TypeError(f"quantize: expected a real array, got dtype {x.dtype}")
    _check_block_size(block_size)
    return _quantize(x, bool(signed), block_size)


# One compiled kernel instead of a dozen dispatches when called outside jit.
@functools.partial(jax.jit, static_argnums=(1, 2))
def _quantize(x: jax.Array, signed: bool, block_size: int) -> QuantizedArray:
    # The block maxima come from a (blocks, block_size) view of the whole blocks
    # and the tail block on its own, not from a padded copy: XLA keeps a padded
    # copy of a fused value in memory (4 bytes per element) when two kernels
    # read it. Padding only the input of the encoding, its one reader, costs nothing.
    flat = x.reshape(-1).astype(jnp.float32)
    size = flat.shape[0]
    parts = _split_blocks(flat, block_size)
    scales = _concat([_block_absmax(part) for part in parts]) if parts else jnp.zeros((0,), jnp.float32)
    padded = jnp.pad(flat, (0, scales.shape[0] * block_size - size)).reshape(-1, block_size)
    codes = _encode(padded / jnp.where(scales > 0, scales, 1.0)[:, None], signed)
    return QuantizedArray(codes.reshape(-1)[:size].reshape(x.shape), scales)


def _split_blocks(flat: jax.Array, block_size: int) -> list[jax.Array]:
    """``flat`` as ``(blocks, block_size)`` of its whole blocks, then ``(1, rest)`` of its tail block."""
    full = flat.shape[0] // block_size * block_size
    parts = [flat[:full].reshape(-1, block_size)] if full else []
    if full < flat.shape[0]:
        parts.append(flat[full:].reshape(1, -1))
    return parts


def _concat(parts: list[jax.Array]) -> jax.Array:
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts)


def _block_absmax(blocks: jax.Array) -> jax.Array:
    """``max(|blocks|, axis=1)`` for float32 ``(num_blocks, block_size)``, NaN-propagating.

    Taken over the bit patterns as int32 (for non-negative floats, integer order
    is float order, and NaN sorts above inf) in two stages of at most 16, so
    XLA:CPU fuses the elementwise work producing ``blocks`` into the reduction.
    A plain float ``jnp.max`` over 256 is rewritten into a reduce-window or an
    XNNPACK call that first writes ``blocks`` out: 4 bytes per element of
    temporary memory and 11x the time (decoding, moment update and block
    maxima of 16.8M elements: 60 ms against 5.5 ms).
    """
    bits = jax.lax.bitcast_convert_type(jnp.abs(blocks), jnp.int32)
    width = blocks.shape[1]
    inner = 16 if width % 16 == 0 else width  # a tail block is short: one stage
    bits = bits.reshape(blocks.shape[0], width // inner, inner)
    # The second stage in float (max propagates NaN), so XLA does not merge the two.
    partial = jax.lax.bitcast_convert_type(jnp.max(bits, axis=2), jnp.float32)
    return jnp.max(partial, axis=1)


def _select(index: jax.Array, values: Any, dtype: Any) -> jax.Array:
    """``values[index]`` for a short list of constants, as a chain of selects (no gather)."""
    out = jnp.full(index.shape, values[0], dtype)
    for t in range(1, len(values)):
        out = jnp.where(index == t, jnp.asarray(values[t], dtype), out)
    return out


class _EncoderConstants(NamedTuple):
    bounds: tuple  # float32 midpoints between the last value of a decade and the first of the next
    inverse_factors: np.ndarray  # 1 / the decade factors, float32
    slots: np.ndarray  # values per decade, float32
    starts: np.ndarray  # index of each decade's first value among the magnitudes, int32
    low: np.float32  # half the smallest magnitude: below it, 0 is nearest
    high: np.float32  # midpoint of the largest magnitude and 1
    last: int  # index of the largest magnitude


@functools.cache
def _encoder_constants(signed: bool) -> _EncoderConstants:
    """What :func:`_encode` needs of a map, computed once (encoding runs per leaf while tracing)."""
    mags = _map_magnitudes(signed)
    slots = [_slots(signed, i) for i in range(_DECADES)]
    starts = np.cumsum([0, *slots])
    bounds = (mags[starts[1:-1] - 1] + mags[starts[1:-1]]) / 2
    return _EncoderConstants(
        bounds=tuple(bounds.astype(np.float32)),
        inverse_factors=(1.0 / _decade_factors(signed)).astype(np.float32),
        slots=np.asarray(slots, np.float32),
        starts=starts[:-1].astype(np.int32),
        low=np.float32(mags[0] / 2),
        high=np.float32((mags[-1] + 1.0) / 2),
        last=len(mags) - 1,
    )


def _encode(x: jax.Array, signed: bool) -> jax.Array:
    """The code of the map value nearest to each ``x`` in [-1, 1] ([0, 1] unsigned).

    Elementwise arithmetic instead of a binary search over the 255 midpoints
    (8 dependent table lookups per element; quantising took 2.8x as long): the
    decade comes from comparisons with the 6 midpoints between decades, the
    slot within it from the decade's even spacing. Exact midpoints may round
    either way.
    """
    c = _encoder_constants(signed)
    m = jnp.abs(x) if signed else jnp.maximum(x, 0.0)
    decade = sum((m > b).astype(jnp.int32) for b in c.bounds)
    inverse = _select(decade, c.inverse_factors, jnp.float32)
    count = _select(decade, c.slots, jnp.float32)
    slot = jnp.clip(jnp.round((m * inverse - 2 * count - 9) / 18), 0, count - 1).astype(jnp.int32)
    j = _select(decade, c.starts, jnp.int32) + slot  # index in the magnitudes
    below_all = m <= c.low  # nearest to 0
    above_all = m > c.high  # nearest to 1
    zero, one = _ZERO_CODE[signed], _ONE_CODE[signed]
    if signed:
        negative = x < 0
        j = jnp.where(negative & above_all, c.last, j)  # -1 is not in the map
        code = jnp.where(negative, -j - 2, jnp.where(above_all, one, j))
        return jnp.where(below_all, zero, code).astype(jnp.int8)
    code = jnp.where(above_all, one, j + 1)
    # A positive value nearest to 0 takes the smallest entry (see the module docstring).
    return jnp.where(below_all, jnp.where(x > 0, 1, zero), code).astype(jnp.uint8)


def _decode(codes: jax.Array, signed: bool) -> jax.Array:
    """The map value of each code, in float32, bit for bit ``SIGNED_MAP``/``UNSIGNED_MAP``.

    Arithmetic rather than a lookup in the 256-entry table: slower on its own
    (0.6-0.8 against 0.2-0.5 ns per element on XLA:CPU), as fast in the 8-bit
    Adam step, where XLA then fuses the decoding into every kernel that reads
    the moment instead of writing the decoded float32 moment out (8 bytes per
    parameter of temporary memory with the lookup).
    """
    k = codes.astype(jnp.int32)
    if signed:  # codes 0..126: magnitudes j = code; -128..-2: j = -code - 2
        negative = k < _ZERO_CODE[signed]
        j = jnp.where(negative, -k - 2, k)
        rank = j + 1  # decade i holds ranks 2**i .. 2**(i+1) - 1
        decade = sum((rank >= 2**t).astype(jnp.int32) for t in range(1, _DECADES))
        count = jnp.left_shift(1, decade)
    else:  # codes 1..254: j = code - 1
        j = k - 1
        rank = j + 2  # decade i holds ranks 2**(i+1) .. 2**(i+2) - 1
        decade = sum((rank >= 2**t).astype(jnp.int32) for t in range(2, _DECADES + 1))
        count = jnp.left_shift(2, decade)
    numerator = 2 * count + 9 + 18 * (rank - count)
    if signed:
        numerator = jnp.where(negative, -numerator, numerator)
    value = numerator.astype(jnp.float32) * _select(decade, _decade_factors(signed), jnp.float32)
    value = jnp.where(k == _ONE_CODE[signed], 1.0, value)
    return jnp.where(k == _ZERO_CODE[signed], 0.0, value)


def dequantize(q: QuantizedArray, dtype: Any = jnp.float32) -> jax.Array:
    """The array a :class:`QuantizedArray` stands for: map value times block scale.

    Args:
        q: the output of :func:`quantize`.
        dtype: dtype of the result.

    Returns:
        An array of ``q.codes.shape``.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> x = jnp.linspace(-1.0, 1.0, 5)
        >>> gradtx.dequantize(gradtx.quantize(x))
        Array([-0.99296874, -0.50078124,  0.        ,  0.50078124,  1.        ],      dtype=float32)
    """
    return _dequantize(q, q.block_size, jnp.dtype(dtype))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _dequantize(q: QuantizedArray, block_size: int, dtype: Any) -> jax.Array:
    size = math.prod(q.codes.shape)
    scales = jnp.broadcast_to(q.scales.astype(jnp.float32)[:, None], (q.scales.shape[0], block_size))
    out = _decode(q.codes.reshape(-1), q.signed) * scales.reshape(-1)[:size]  # no gather, no padding
    return out.reshape(q.codes.shape).astype(dtype)


@dataclasses.dataclass(frozen=True)
class QuantizedDtype:
    """8-bit block-wise storage for an optimizer-state buffer.

    Pass it (or the shorthand ``"int8"`` / ``"uint8"``) as ``mu_dtype`` or
    ``nu_dtype`` of :func:`scale_by_adam` and the optimizers built on it, or
    as ``mu_dtype`` of :func:`add_momentum` / :func:`sgd`. Each step decodes
    the buffer to float32, updates it and computes the step in float32, then
    stores it quantised again.

    Args:
        signed: the signed dynamic map (``"int8"``; first moments) or the
            unsigned one (``"uint8"``; second moments).
        block_size: elements per scale, a power of two.
        min_size: leaves with fewer elements (and complex leaves) are kept
            unquantised in their compute dtype (float32 for float32, bfloat16
            and float16 parameters): quantising a bias saves little memory and
            costs some accuracy. bitsandbytes uses 4096.

    Example:
        >>> import jax.numpy as jnp
        >>> import gradtx
        >>> every_leaf = gradtx.QuantizedDtype(signed=False, min_size=0)
        >>> tx = gradtx.adam(1e-3, mu_dtype="int8", nu_dtype=every_leaf)
        >>> st = tx.init({"w": jnp.zeros((64, 64)), "b": jnp.zeros(64)})[0]
        >>> [isinstance(buf[k], gradtx.QuantizedArray) for buf in (st.mu, st.nu) for k in "wb"]
        [True, False, True, True]
    """

    signed: bool = True
    block_size: int = 256
    min_size: int = 4096

    def __post_init__(self) -> None:
        _check_block_size(self.block_size)
        if not isinstance(self.min_size, int) or self.min_size < 0:
            raise ValueError(f"min_size must be a non-negative int, got {self.min_size!r}")


_SHORTHANDS = {"int8": QuantizedDtype(signed=True), "uint8": QuantizedDtype(signed=False)}


def quantized_spec(dtype: Any) -> QuantizedDtype | None:
    """The :class:`QuantizedDtype` a ``mu_dtype``/``nu_dtype`` argument asks for, or None."""
    if isinstance(dtype, QuantizedDtype) or dtype is None:
        return dtype
    try:
        name = jnp.dtype(dtype).name  # "int8", jnp.int8 and np.dtype("int8") alike
    except (TypeError, ValueError):
        return None
    return _SHORTHANDS.get(name)


def _check_float_dtype(name: str, dtype: Any) -> None:
    """Raises ValueError unless ``dtype`` is None or an inexact (floating or complex) dtype."""
    try:
        inexact = jnp.issubdtype(jnp.dtype(dtype), jnp.inexact)
    except (TypeError, ValueError):
        inexact = False
    if not inexact:
        raise ValueError(
            f"{name} must be None, a floating dtype (such as jnp.bfloat16) or 'int8'/'uint8' "
            f"where 8-bit state is supported, got {dtype!r}"
        )


def check_state_dtype(name: str, dtype: Any, *, signed: bool) -> None:
    """Raises ValueError if ``dtype`` is not a state dtype, or asks for 8-bit storage with the wrong map."""
    spec = quantized_spec(dtype)
    if spec is None and dtype is not None:
        _check_float_dtype(name, dtype)
    if spec is not None and spec.signed != signed:
        want = "'int8' (the signed map)" if signed else "'uint8' (the unsigned map)"
        why = "it holds values of either sign" if signed else "it is never negative"
        raise ValueError(f"{name}={dtype!r}: 8-bit storage of this buffer needs {want}, as {why}")


def reject_quantized(where: str, **dtypes: Any) -> None:
    """Raises ValueError if a transform without 8-bit support is asked for it, or for a non-float dtype."""
    for name, dtype in dtypes.items():
        if quantized_spec(dtype) is not None:
            raise ValueError(
                f"{where}: {name}={dtype!r} asks for 8-bit state, which only scale_by_adam "
                "(adam, adamw, nadam, amsgrad), add_momentum (sgd) and scale_by_lion (lion) support"
            )
        if dtype is not None:
            _check_float_dtype(name, dtype)


def buffer_zeros(params: Any, dtype: Any, make: Callable[[Any, Any], Any]) -> Any:
    """Zero state buffers shaped like ``params``: ``make(params, dtype)`` for ordinary dtypes.

    For a quantised ``dtype``, large real leaves get a zero :class:`QuantizedArray`
    and the others ``make``'s buffer in their compute dtype (float32 for
    float32, bfloat16 and float16 parameters).
    """
    spec = quantized_spec(dtype)
    if spec is None:
        return make(params, dtype)

    def zeros(p):
        shape = jnp.shape(p)
        if math.prod(shape) < spec.min_size or not jnp.issubdtype(p.dtype, jnp.floating):
            # Keeps the leaf's sharding (a tracer has none), so the buffer is placed like the leaf.
            sharding = getattr(p, "sharding", None)
            return make(jax.ShapeDtypeStruct(shape, compute_dtype(p.dtype), sharding=sharding), None)
        codes = jnp.full_like(p, _ZERO_CODE[spec.signed], _CODE_DTYPE[spec.signed])
        return QuantizedArray(codes, jnp.zeros(_num_blocks(math.prod(shape), spec.block_size), jnp.float32))

    return jax.tree.map(zeros, params)


def is_quantized(x: Any) -> bool:
    return isinstance(x, QuantizedArray)


def unpack(buffer: Any) -> Any:
    """A state buffer's value: decoded to float32 if quantised, else as it is."""
    return dequantize(buffer) if is_quantized(buffer) else buffer


def pack_like(new: jax.Array, old: Any) -> Any:
    """``new`` stored the way ``old`` was: quantised alike, or cast to ``old.dtype``."""
    if is_quantized(old):
        return quantize(new, old.signed, old.block_size)
    return new.astype(old.dtype)


def leaf_view(tree: Any) -> Any:
    """``tree`` with each :class:`QuantizedArray` replaced by its codes.

    The codes have the parameter's shape, so the result has the structure and
    shapes of the parameters: what ``check_same_structure`` compares.
    """
    return jax.tree.map(lambda x: x.codes if is_quantized(x) else x, tree, is_leaf=is_quantized)
