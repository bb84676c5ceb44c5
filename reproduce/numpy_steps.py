"""The book's three cells as numpy steps on restored weights: `generate` and `evaluate` without a
`session.run` per bigram.

`NumpyModel.from_session(session, model)` reads every weight of a BookModel once; `step(ids, states)`
is then exactly the mathematics of the cell's `fused` step in `cells.py` (each gate's `x·Wx + b` a row
of one table, the hidden products one `[H, gates*H]` product, in float32 like the graph), for one row
or a batch of rows, and `probabilities(outputs)` the output layer and softmax of the test and valid
subgraphs. tests/test_evaluate.py holds the perplexities and stories to the graph's for every cell.
"""
import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class NumpyModel:
    """A BookModel's weights as numpy arrays, and one step of its cell (`config.cell`: lstm, peephole, gru)."""

    def __init__(self, cell, table, hidden, w, b, peephole=None):
        self.cell = cell
        self.table = table                # [V, gates*H]: row k is every gate's x·Wx + b for bigram k
        self.hidden = hidden              # [H, gates*H]: the hidden-state matrices in `fused_order`
        self.w, self.b = w, b             # the output layer
        self.peephole = peephole          # peephole LSTM: [3, 1, H], the diagonal weights of i, f, o
        self.num_nodes = hidden.shape[0]
        self.state_count = 1 if cell == "gru" else 2

    @classmethod
    def from_session(cls, session, model):
        cell = model.cell
        x_weights, x_biases = cell.input_weights()
        fetches = {"x": x_weights, "bias": x_biases, "hidden": [cell.hidden[g] for g in cell.fused_order],
                   "w": model.w, "b": model.b}
        if model.config.cell == "peephole":
            fetches["peephole"] = [cell.peephole[g] for g in ("i", "f", "o")]
        values = session.run(fetches)
        table = np.concatenate(values["x"], axis=1) + np.concatenate(values["bias"], axis=1)
        peephole = np.stack(values["peephole"]) if "peephole" in values else None
        return cls(model.config.cell, table, np.concatenate(values["hidden"], axis=1), values["w"], values["b"],
                   peephole)

    def zero_states(self, rows):
        return tuple(np.zeros([rows, self.num_nodes], np.float32) for _ in range(self.state_count))

    def step(self, ids, states):
        """One step for the rows `ids` (bigram ids) from `states`; returns (output, new states)."""
        x_gates = self.table[ids]
        if self.cell == "gru":                      # GRUCell.fused: fused_order r, z, h
            (o,) = states
            H = self.num_nodes
            hidden_reset_update = o @ self.hidden[:, :2 * H]
            reset_gate = sigmoid(x_gates[:, :H] + hidden_reset_update[:, :H])
            update_gate = sigmoid(x_gates[:, H:2 * H] + hidden_reset_update[:, H:])
            candidate = np.tanh(x_gates[:, 2 * H:] + (reset_gate * o) @ self.hidden[:, 2 * H:])
            output = (1 - update_gate) * o + update_gate * candidate
            return output, (output,)
        o, state = states                           # LSTMCell.fused / PeepholeLSTMCell.fused: i, c, f, o
        gates = x_gates + o @ self.hidden
        input_gate, update, forget_gate, output_gate = np.split(gates, 4, axis=1)
        if self.peephole is None:
            state = sigmoid(forget_gate) * state + sigmoid(input_gate) * np.tanh(update)
            output = sigmoid(output_gate) * np.tanh(state)
        else:                                       # the output gate looks at the new state, as the book wrote it
            peephole_i, peephole_f, peephole_o = self.peephole
            state = (sigmoid(forget_gate + state * peephole_f) * state
                     + sigmoid(input_gate + state * peephole_i) * np.tanh(update))
            output = sigmoid(output_gate + state * peephole_o) * np.tanh(state)
        return output, (output, state)

    def probabilities(self, outputs):
        """The softmax of the output layer, one row per row of `outputs`."""
        logits = outputs @ self.w + self.b
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)
