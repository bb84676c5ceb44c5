"""The book's recurrent cells as explicit variables (spec §4; loop.md "Extensions"): LSTM, peephole LSTM, GRU.

Each cell class owns its variables and every form of its mathematics over them, side by side:
- `literal(x, states)`: the book's code, `x` a one-hot [batch, V] row multiplied by each gate's
  `[V, H]` matrix (the faithful graph);
- `fused(x_gates, states)`: `x_gates` already holds every gate's `x·Wx + b`, taken as row look-ups
  of `input_weights()` concatenated, and the hidden-state products are one matrix product (the
  fast graph's valid, test and beam steps);
- `numpy_step(x_gates, states, hidden, **weights)`: `fused` in float32 numpy on restored weights
  (`numpy_steps.NumpyModel`: generate and evaluate without a `session.run` per bigram);
- `fast_language_model(...)`: the fast graph's training pass (unroll, output layer, loss and a
  hand-written backward pass), the cell's function in fast_unroll.py applied to its variables.
Same mathematics, same variable names, so checkpoints move between the graphs.

Adding a cell is one class here (its gates and state names, the four forms above, and in
`step_weights` any variable besides the gate matrices that its numpy step and fast pass read), its
fast pass in fast_unroll.py, and its name in CELLS; tests/test_cells.py then holds all four forms equal.
"""
import numpy as np
import tensorflow as tf

from reproduce.fast_unroll import gru_language_model, lstm_language_model

tf1 = tf.compat.v1


def weight_variable(name, shape, stddev, seed):
    return tf1.Variable(tf1.truncated_normal(shape, stddev=stddev, seed=seed), name=name)


def bias_variable(name, shape, low, high, seed):
    return tf1.Variable(tf1.random_uniform(shape, low, high, seed=seed), name=name)


def numpy_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class _Cell:
    """Variables `<gate><x|hidden|b>` per gate; subclasses say which gates (`gates`, `fused_order`, `state_names`)
    and give the four forms of a step (`literal`, `fused`, `numpy_step`, `fast_language_model`)."""
    gates = ()
    hidden_suffix = "m"
    state_names = ("output",)
    weight_stddev, bias_range = 0.02, (-0.02, 0.02)

    def __init__(self, vocabulary_size, num_nodes, seed):
        self.num_nodes = num_nodes
        self._seed = seed
        self.x = {g: weight_variable(f"{g}x", [vocabulary_size, num_nodes], self.weight_stddev, self._next_seed())
                  for g in self.gates}
        self.hidden = {g: weight_variable(f"{g}{self.hidden_suffix}", [num_nodes, num_nodes], self.weight_stddev,
                                  self._next_seed()) for g in self.gates}
        self.bias = {g: bias_variable(f"{g}b", [1, num_nodes], *self.bias_range, self._next_seed()) for g in self.gates}
        self._fused_hidden = {}

    def _next_seed(self):
        self._seed += 1
        return self._seed

    def input_weights(self):
        """The `[V, H]` gate matrices in the order `fused` expects, and their biases."""
        order = self.fused_order
        return [self.x[g] for g in order], [self.bias[g] for g in order]

    def fused_hidden(self, gates):
        """[H, len(gates)*H]: the hidden-state matrices of `gates` side by side (built once per graph)."""
        key = tuple(gates)
        if key not in self._fused_hidden:
            self._fused_hidden[key] = tf.concat([self.hidden[g] for g in gates], axis=1, name="fused_hidden")
        return self._fused_hidden[key]

    def step_weights(self):
        """The variables besides the gate matrices that `numpy_step` and `fast_language_model` read, by keyword."""
        return {}


class LSTMCell(_Cell):
    """The book's `lstm_cell(i, o, state)`."""
    gates = ("i", "f", "c", "o")
    fused_order = ("i", "c", "f", "o")      # the layout of TensorFlow's LSTM block kernels (fast_unroll.py)
    state_names = ("output", "state")

    def literal(self, i, states):
        o, state = states
        input_gate = tf.sigmoid(tf.matmul(i, self.x["i"]) + tf.matmul(o, self.hidden["i"]) + self.bias["i"])
        forget_gate = tf.sigmoid(tf.matmul(i, self.x["f"]) + tf.matmul(o, self.hidden["f"]) + self.bias["f"])
        update = tf.matmul(i, self.x["c"]) + tf.matmul(o, self.hidden["c"]) + self.bias["c"]
        state = forget_gate * state + input_gate * tf.tanh(update)
        output_gate = tf.sigmoid(tf.matmul(i, self.x["o"]) + tf.matmul(o, self.hidden["o"]) + self.bias["o"])
        output = output_gate * tf.tanh(state)
        return output, (output, state)

    def fused(self, x_gates, states):
        o, state = states
        gates = x_gates + tf.matmul(o, self.fused_hidden(self.fused_order))
        input_gate, update, forget_gate, output_gate = tf.split(gates, 4, axis=1)
        state = tf.sigmoid(forget_gate) * state + tf.sigmoid(input_gate) * tf.tanh(update)
        output = tf.sigmoid(output_gate) * tf.tanh(state)
        return output, (output, state)

    def numpy_step(self, x_gates, states, hidden):
        o, state = states
        gates = x_gates + o @ hidden
        input_gate, update, forget_gate, output_gate = np.split(gates, 4, axis=1)
        state = numpy_sigmoid(forget_gate) * state + numpy_sigmoid(input_gate) * np.tanh(update)
        output = numpy_sigmoid(output_gate) * np.tanh(state)
        return output, (output, state)

    def fast_language_model(self, table, w, b, ids, labels, states, masks, save_dropped_output,
                            first_step_reads_final_state):
        """`fast_unroll.lstm_language_model` on this cell's variables (a peephole LSTM's peepholes too)."""
        return lstm_language_model(table, self.fused_hidden(self.fused_order), w, b, ids, labels, *states, masks,
                                   save_dropped_output, first_step_reads_final_state=first_step_reads_final_state,
                                   **self.step_weights())


class PeepholeLSTMCell(LSTMCell):
    """The extensions notebook's LSTM with peepholes: diagonal weights `ic, fc, oc` [1, H].

    The output gate looks at the *new* state, as the book wrote it. Initialisation: weights truncated
    normal 0.01, biases uniform [0, 0.01] (the peepholes are weights of that notebook too).
    """
    weight_stddev, bias_range = 0.01, (0.0, 0.01)

    def __init__(self, vocabulary_size, num_nodes, seed):
        super().__init__(vocabulary_size, num_nodes, seed)
        self.peephole = {g: weight_variable(f"{g}c", [1, num_nodes], self.weight_stddev, self._next_seed())
                         for g in ("i", "f", "o")}

    def step_weights(self):
        return {"peepholes": [self.peephole[g] for g in ("i", "f", "o")]}

    def literal(self, i, states):
        o, state = states
        input_gate = tf.sigmoid(tf.matmul(i, self.x["i"]) + state * self.peephole["i"]
                                + tf.matmul(o, self.hidden["i"]) + self.bias["i"])
        forget_gate = tf.sigmoid(tf.matmul(i, self.x["f"]) + state * self.peephole["f"]
                                 + tf.matmul(o, self.hidden["f"]) + self.bias["f"])
        update = tf.matmul(i, self.x["c"]) + tf.matmul(o, self.hidden["c"]) + self.bias["c"]
        state = forget_gate * state + input_gate * tf.tanh(update)
        output_gate = tf.sigmoid(tf.matmul(i, self.x["o"]) + state * self.peephole["o"]
                                 + tf.matmul(o, self.hidden["o"]) + self.bias["o"])
        output = output_gate * tf.tanh(state)
        return output, (output, state)

    def fused(self, x_gates, states):
        o, state = states
        gates = x_gates + tf.matmul(o, self.fused_hidden(self.fused_order))
        input_gate, update, forget_gate, output_gate = tf.split(gates, 4, axis=1)
        input_gate = tf.sigmoid(input_gate + state * self.peephole["i"])
        forget_gate = tf.sigmoid(forget_gate + state * self.peephole["f"])
        state = forget_gate * state + input_gate * tf.tanh(update)
        output = tf.sigmoid(output_gate + state * self.peephole["o"]) * tf.tanh(state)
        return output, (output, state)

    def numpy_step(self, x_gates, states, hidden, peepholes):
        o, state = states
        gates = x_gates + o @ hidden
        input_gate, update, forget_gate, output_gate = np.split(gates, 4, axis=1)
        peephole_i, peephole_f, peephole_o = peepholes
        state = (numpy_sigmoid(forget_gate + state * peephole_f) * state
                 + numpy_sigmoid(input_gate + state * peephole_i) * np.tanh(update))
        output = numpy_sigmoid(output_gate + state * peephole_o) * np.tanh(state)     # the new state, as the book
        return output, (output, state)


class GRUCell(_Cell):
    """The extensions notebook's GRU: reset `r`, candidate `h`, update `z`; only an output state."""
    gates = ("r", "h", "z")
    fused_order = ("r", "z", "h")
    hidden_suffix = "h"
    state_names = ("output",)
    weight_stddev, bias_range = 0.01, (0.0, 0.01)

    def literal(self, i, states):
        (o,) = states
        reset_gate = tf.sigmoid(tf.matmul(i, self.x["r"]) + tf.matmul(o, self.hidden["r"]) + self.bias["r"])
        candidate = tf.tanh(tf.matmul(i, self.x["h"]) + tf.matmul(reset_gate * o, self.hidden["h"]) + self.bias["h"])
        update_gate = tf.sigmoid(tf.matmul(i, self.x["z"]) + tf.matmul(o, self.hidden["z"]) + self.bias["z"])
        output = (1 - update_gate) * o + update_gate * candidate
        return output, (output,)

    def fused(self, x_gates, states):
        (o,) = states
        x_reset, x_update, x_candidate = tf.split(x_gates, 3, axis=1)
        hidden_reset, hidden_update = tf.split(tf.matmul(o, self.fused_hidden(("r", "z"))), 2, axis=1)
        reset_gate = tf.sigmoid(x_reset + hidden_reset)
        update_gate = tf.sigmoid(x_update + hidden_update)
        candidate = tf.tanh(x_candidate + tf.matmul(reset_gate * o, self.hidden["h"]))
        output = (1 - update_gate) * o + update_gate * candidate
        return output, (output,)

    def numpy_step(self, x_gates, states, hidden):
        (o,) = states
        H = self.num_nodes                                 # columns in `fused_order`: r, z, h
        hidden_reset_update = o @ hidden[:, :2 * H]
        reset_gate = numpy_sigmoid(x_gates[:, :H] + hidden_reset_update[:, :H])
        update_gate = numpy_sigmoid(x_gates[:, H:2 * H] + hidden_reset_update[:, H:])
        candidate = np.tanh(x_gates[:, 2 * H:] + (reset_gate * o) @ hidden[:, 2 * H:])
        output = (1 - update_gate) * o + update_gate * candidate
        return output, (output,)

    def fast_language_model(self, table, w, b, ids, labels, states, masks, save_dropped_output,
                            first_step_reads_final_state):
        """`fast_unroll.gru_language_model` on this cell's variables."""
        return gru_language_model(table, self.fused_hidden(("r", "z")), self.hidden["h"], w, b, ids, labels, *states,
                                  masks, save_dropped_output, first_step_reads_final_state=first_step_reads_final_state)


CELLS = {"lstm": LSTMCell, "peephole": PeepholeLSTMCell, "gru": GRUCell}
