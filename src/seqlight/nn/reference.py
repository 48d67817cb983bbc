"""Recurrent layers in plain numpy: the book's RNN of section 6.2 and the Keras equations, step by step.

These functions are the test oracles of :mod:`seqlight.nn` and are written to be read: one timestep at a
time, weights in Keras's layout (``kernel (in, G*units)``, ``recurrent_kernel (units, G*units)``) and gate
order (GRU z, r, h; LSTM i, f, c, o), exactly as ``layer.get_weights()`` returns them.

``bias=None`` is a layer without biases (Keras ``use_bias=False``, torch ``bias=False``): zero biases.

Dropout masks are arguments (already scaled by ``1 / (1 - rate)``), so a test can give the same masks to
the layer and to the oracle:

- ``dropout_mask``: ``(B, in)``, one mask shared by the gates, or ``(G, B, in)``, one per gate (Keras
  order);
- ``recurrent_mask``: ``(G, B, units)`` in Keras gate order.

``mask``: ``(B, T)`` booleans, True for a real step (Keras's ``mask`` argument, what ``Embedding(mask_zero=True)``
produces). A masked step keeps the previous state (``h``, and the LSTM's ``c``) and outputs it again: Keras's
masking as its TensorFlow backend's ``rnn`` loop writes it (``output = where(mask_t, output, states[0])``; Keras 3
differs in one place: before the first real step it outputs zeros rather than the initial state, which is the same
thing for the default zero state). With ``go_backwards`` the mask is reversed with the sequence.

Sources of the equations: Keras 2.0.8 ``keras/layers/recurrent.py`` (``SimpleRNN.step``, ``GRU.step``,
``LSTM.step``), Keras 3 ``keras/src/layers/rnn/{simple_rnn,gru,lstm}.py`` (``call`` of the cells).

Example:
    >>> import numpy as np
    >>> from seqlight.nn import reference
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((100, 32))
    >>> W, U, b = rng.random((64, 32)), rng.random((64, 64)), rng.random(64)
    >>> reference.book_simple_rnn(x, W, U, b).shape
    (100, 64)
"""

from __future__ import annotations

import numpy as np

from seqlight.nn.activations import ACTIVATIONS as _TABLE

__all__ = [
    "sigmoid",
    "hard_sigmoid",
    "ACTIVATIONS",
    "book_simple_rnn",
    "simple_rnn",
    "lstm",
    "gru_keras2",
    "gru_keras3",
]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def hard_sigmoid(x):
    """Keras 2 (the book's): ``clip(0.2 x + 0.5, 0, 1)``."""
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)


# The names are seqlight.nn's one table (seqlight.nn.activations); the functions are numpy transcriptions.
_NUMPY = {
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "relu": lambda x: np.maximum(x, 0.0),
    "linear": lambda x: x,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "softsign": lambda x: x / (1.0 + np.abs(x)),
}
ACTIVATIONS = {name: _NUMPY[name] for name in _TABLE}


def book_simple_rnn(inputs, W, U, b):
    """Listing 6.19 of the book (section 6.2.1): a numpy RNN over one sequence.

    Args:
        inputs: ``(timesteps, input_features)``.
        W: ``(output_features, input_features)``; U: ``(output_features, output_features)``;
        b: ``(output_features,)``.

    Returns: ``(timesteps, output_features)``, the state after every step (``np.stack`` of the book's
    ``successive_outputs``, stacked on axis 0).
    """
    state_t = np.zeros((W.shape[0],))
    successive_outputs = []
    for input_t in inputs:
        output_t = np.tanh(np.dot(W, input_t) + np.dot(U, state_t) + b)
        successive_outputs.append(output_t)
        state_t = output_t
    return np.stack(successive_outputs, axis=0)


def _gate_inputs(x_t, dropout_mask, gates):
    """The input of each gate at one step: ``x_t`` times its dropout mask (or the shared one)."""
    if dropout_mask is None:
        return [x_t] * gates
    m = np.asarray(dropout_mask)
    if m.ndim == 2:
        return [x_t * m] * gates
    return [x_t * m[g] for g in range(gates)]


def _gate_states(h, recurrent_mask, gates):
    if recurrent_mask is None:
        return [h] * gates
    return [h * recurrent_mask[g] for g in range(gates)]


def _split(a, gates):
    """Split the last axis of a Keras kernel/bias into its gates."""
    return np.split(a, gates, axis=-1)


def _bias(bias, shape):
    """``bias``, or zeros of ``shape`` for a layer without biases (``bias=None``)."""
    return np.zeros(shape) if bias is None else np.asarray(bias)


def _time_order(x, go_backwards):
    x = np.asarray(x)
    return x[:, ::-1] if go_backwards else x


def _step_mask(mask, x, go_backwards):
    """``(B, T, 1)`` booleans in processing order (all True without a mask)."""
    if mask is None:
        return np.ones(x.shape[:2] + (1,), dtype=bool)
    return _time_order(np.asarray(mask, dtype=bool), go_backwards)[..., None]


def simple_rnn(
    x,
    kernel,
    recurrent_kernel,
    bias,
    activation="tanh",
    h0=None,
    dropout_mask=None,
    recurrent_mask=None,
    go_backwards=False,
    mask=None,
):
    """Keras ``SimpleRNN`` (2.0.8 and 3 alike): ``h = activation((x * m) W + b + (h * m_r) U)``.

    Returns ``(outputs (B, T, units), h_T)``; with ``go_backwards`` the outputs are in processing order.
    """
    bias = _bias(bias, recurrent_kernel.shape[1])
    act = ACTIVATIONS[activation]
    keep = _step_mask(mask, x, go_backwards)
    x = _time_order(x, go_backwards)
    B, H = x.shape[0], recurrent_kernel.shape[0]
    h = np.zeros((B, H)) if h0 is None else h0
    outputs = []
    for t in range(x.shape[1]):
        (xi,) = _gate_inputs(x[:, t], dropout_mask, 1)
        (hi,) = _gate_states(h, recurrent_mask, 1)
        h = np.where(keep[:, t], act(xi @ kernel + bias + hi @ recurrent_kernel), h)
        outputs.append(h)
    return np.stack(outputs, 1), h


def lstm(
    x,
    kernel,
    recurrent_kernel,
    bias,
    activation="tanh",
    recurrent_activation="sigmoid",
    h0=None,
    c0=None,
    dropout_mask=None,
    recurrent_mask=None,
    go_backwards=False,
    mask=None,
):
    """Keras ``LSTM`` (2.0.8 with ``recurrent_activation='hard_sigmoid'``, 3 with ``'sigmoid'``), gates i, f, c, o.

    Returns ``(outputs (B, T, units), h_T, c_T)``.
    """
    bias = _bias(bias, recurrent_kernel.shape[1])
    act, ract = ACTIVATIONS[activation], ACTIVATIONS[recurrent_activation]
    keep = _step_mask(mask, x, go_backwards)
    x = _time_order(x, go_backwards)
    B, H = x.shape[0], recurrent_kernel.shape[0]
    h = np.zeros((B, H)) if h0 is None else h0
    c = np.zeros((B, H)) if c0 is None else c0
    W_i, W_f, W_c, W_o = _split(kernel, 4)
    U_i, U_f, U_c, U_o = _split(recurrent_kernel, 4)
    b_i, b_f, b_c, b_o = _split(bias, 4)
    outputs = []
    for t in range(x.shape[1]):
        x_i, x_f, x_c, x_o = _gate_inputs(x[:, t], dropout_mask, 4)
        h_i, h_f, h_c, h_o = _gate_states(h, recurrent_mask, 4)
        i = ract(x_i @ W_i + b_i + h_i @ U_i)
        f = ract(x_f @ W_f + b_f + h_f @ U_f)
        c_new = f * c + i * act(x_c @ W_c + b_c + h_c @ U_c)
        o = ract(x_o @ W_o + b_o + h_o @ U_o)
        h, c = np.where(keep[:, t], o * act(c_new), h), np.where(keep[:, t], c_new, c)
        outputs.append(h)
    return np.stack(outputs, 1), h, c


def gru_keras2(
    x,
    kernel,
    recurrent_kernel,
    bias,
    activation="tanh",
    recurrent_activation="hard_sigmoid",
    h0=None,
    dropout_mask=None,
    recurrent_mask=None,
    go_backwards=False,
    mask=None,
):
    """The GRU the book ran (Keras 2.0.8 ``GRU.step``; Keras 2.2 ``reset_after=False``): gates z, r, h,
    one bias ``(3*units,)``, the reset gate applied to the state *before* the recurrent matmul::

        z = ra(x_z W_z + b_z + h_z U_z);  r = ra(x_r W_r + b_r + h_r U_r)
        hh = act(x_h W_h + b_h + (r * h_h) U_h);  h = z * h + (1 - z) * hh

    Returns ``(outputs (B, T, units), h_T)``.
    """
    bias = _bias(bias, recurrent_kernel.shape[1])
    act, ract = ACTIVATIONS[activation], ACTIVATIONS[recurrent_activation]
    keep = _step_mask(mask, x, go_backwards)
    x = _time_order(x, go_backwards)
    B, H = x.shape[0], recurrent_kernel.shape[0]
    h = np.zeros((B, H)) if h0 is None else h0
    W_z, W_r, W_h = _split(kernel, 3)
    U_z, U_r, U_h = _split(recurrent_kernel, 3)
    b_z, b_r, b_h = _split(bias, 3)
    outputs = []
    for t in range(x.shape[1]):
        x_z, x_r, x_h = _gate_inputs(x[:, t], dropout_mask, 3)
        h_z, h_r, h_h = _gate_states(h, recurrent_mask, 3)
        z = ract(x_z @ W_z + b_z + h_z @ U_z)
        r = ract(x_r @ W_r + b_r + h_r @ U_r)
        hh = act(x_h @ W_h + b_h + (r * h_h) @ U_h)
        h = np.where(keep[:, t], z * h + (1 - z) * hh, h)
        outputs.append(h)
    return np.stack(outputs, 1), h


def gru_keras3(
    x,
    kernel,
    recurrent_kernel,
    bias,
    activation="tanh",
    recurrent_activation="sigmoid",
    h0=None,
    dropout_mask=None,
    recurrent_mask=None,
    go_backwards=False,
    mask=None,
):
    """The tf.keras / Keras 3 GRU (``reset_after=True``, = ``torch.nn.GRU``): gates z, r, h, bias
    ``(2, 3*units)`` (row 0 input bias, row 1 recurrent bias), the reset gate applied *after* the
    recurrent matmul::

        z = ra(x_z W_z + b_z + h_z U_z + c_z);  r = ra(x_r W_r + b_r + h_r U_r + c_r)
        hh = act(x_h W_h + b_h + r * (h_h U_h + c_h));  h = z * h + (1 - z) * hh

    Returns ``(outputs (B, T, units), h_T)``.
    """
    bias = _bias(bias, (2, recurrent_kernel.shape[1]))
    act, ract = ACTIVATIONS[activation], ACTIVATIONS[recurrent_activation]
    keep = _step_mask(mask, x, go_backwards)
    x = _time_order(x, go_backwards)
    B, H = x.shape[0], recurrent_kernel.shape[0]
    h = np.zeros((B, H)) if h0 is None else h0
    W_z, W_r, W_h = _split(kernel, 3)
    U_z, U_r, U_h = _split(recurrent_kernel, 3)
    b_z, b_r, b_h = _split(bias[0], 3)
    c_z, c_r, c_h = _split(bias[1], 3)
    outputs = []
    for t in range(x.shape[1]):
        x_z, x_r, x_h = _gate_inputs(x[:, t], dropout_mask, 3)
        h_z, h_r, h_h = _gate_states(h, recurrent_mask, 3)
        z = ract(x_z @ W_z + b_z + h_z @ U_z + c_z)
        r = ract(x_r @ W_r + b_r + h_r @ U_r + c_r)
        hh = act(x_h @ W_h + b_h + r * (h_h @ U_h + c_h))
        h = np.where(keep[:, t], z * h + (1 - z) * hh, h)
        outputs.append(h)
    return np.stack(outputs, 1), h
