"""A BookModel's restored weights as numpy arrays: `generate` and `evaluate` without a `session.run` per bigram.

`NumpyModel.from_session(session, cell, w, b)` reads the cell's weights and the output layer once;
`step(ids, states)` is then the cell's `numpy_step` (cells.py: the mathematics of its `fused` step in
float32 numpy) for one row or a batch of rows, and `probabilities(outputs)` the output layer and softmax
of the test and valid subgraphs. tests/test_cells.py holds every cell's numpy step to its graph steps.
"""
import numpy as np


class NumpyModel:
    """The cell's weights as arrays (`table`, `hidden`, the cell's `step_weights`) and the output layer."""

    def __init__(self, cell, table, hidden, step_weights, w, b):
        self.cell = cell                  # a cells.py cell: its `numpy_step` and state names
        self.table = table                # [V, gates*H]: row k is every gate's x·Wx + b for bigram k
        self.hidden = hidden              # [H, gates*H]: the hidden-state matrices in `fused_order`
        self.step_weights = step_weights  # the cell's other weights, by `numpy_step` keyword
        self.w, self.b = w, b             # the output layer
        self.num_nodes = hidden.shape[0]

    @classmethod
    def from_session(cls, session, cell, w, b):
        """Read `cell`'s variables and the output layer `w`, `b` from `session` once."""
        x_weights, x_biases = cell.input_weights()
        values = session.run({"x": x_weights, "bias": x_biases, "hidden": [cell.hidden[g] for g in cell.fused_order],
                              "step_weights": cell.step_weights(), "w": w, "b": b})
        table = np.concatenate(values["x"], axis=1) + np.concatenate(values["bias"], axis=1)
        return cls(cell, table, np.concatenate(values["hidden"], axis=1), values["step_weights"], values["w"],
                   values["b"])

    def zero_states(self, rows):
        return tuple(np.zeros([rows, self.num_nodes], np.float32) for _ in self.cell.state_names)

    def step(self, ids, states):
        """One step for the rows `ids` (bigram ids) from `states`; returns (output, new states)."""
        return self.cell.numpy_step(self.table[ids], states, self.hidden, **self.step_weights)

    def probabilities(self, outputs):
        """The softmax of the output layer, one row per row of `outputs`."""
        logits = outputs @ self.w + self.b
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)
