"""Each cell, both ways (the book's one-hot products and the fused row look-ups), against numpy."""
import numpy as np
import pytest
import tensorflow as tf

from reproduce.cells import CELLS

tf1 = tf.compat.v1
V, H, B = 11, 6, 4


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def numpy_lstm(p, i, o, state, peephole=False):
    def gate(g, s=None):
        z = i @ p[g + "x"] + o @ p[g + "m"] + p[g + "b"]
        return z + s * p[g + "c"] if peephole and s is not None else z
    input_gate = sigmoid(gate("i", state))
    forget_gate = sigmoid(gate("f", state))
    state = forget_gate * state + input_gate * np.tanh(gate("c"))
    output_gate = sigmoid(gate("o", state))           # the peephole output gate sees the new state
    return output_gate * np.tanh(state), state


def numpy_gru(p, i, o):
    r = sigmoid(i @ p["rx"] + o @ p["rh"] + p["rb"])
    candidate = np.tanh(i @ p["hx"] + (r * o) @ p["hh"] + p["hb"])
    z = sigmoid(i @ p["zx"] + o @ p["zh"] + p["zb"])
    return (1 - z) * o + z * candidate


def _cell_values(name):
    with tf.Graph().as_default():
        cell = CELLS[name](V, H, seed=7)
        # Random values large enough that every term matters.
        variables = {v.op.name: v for v in tf1.global_variables()}
        rng = np.random.RandomState(0)
        values = {k: rng.normal(0, 0.5, v.shape.as_list()).astype(np.float32) for k, v in variables.items()}
        ids = tf1.placeholder(tf.int32, [B])
        states_in = [tf1.placeholder(tf.float32, [B, H]) for _ in cell.state_names]
        literal_out, literal_states = cell.literal(tf.one_hot(ids, V), states_in)
        weights, biases = cell.input_weights()
        x_gates = tf.gather(tf.concat(weights, 1), ids) + tf.concat(biases, 1)
        fused_out, fused_states = cell.fused(x_gates, states_in)
        with tf1.Session() as session:
            for k, v in variables.items():
                v.load(values[k], session)
            feed_ids = rng.randint(0, V, B)
            feed_states = [rng.normal(0, 1, [B, H]).astype(np.float32) for _ in cell.state_names]
            feed = {ids: feed_ids, **dict(zip(states_in, feed_states))}
            results = session.run([literal_out, literal_states, fused_out, fused_states], feed)
    return values, np.eye(V)[feed_ids], feed_states, results


@pytest.mark.parametrize("name", ["lstm", "peephole"])
def test_lstm_cells_match_numpy(name):
    values, x, (o, state), (lit_out, lit_states, fused_out, fused_states) = _cell_values(name)
    expected_out, expected_state = numpy_lstm(values, x, o, state, peephole=(name == "peephole"))
    for out, states in ((lit_out, lit_states), (fused_out, fused_states)):
        np.testing.assert_allclose(out, expected_out, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(states[1], expected_state, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(states[0], expected_out, rtol=1e-5, atol=1e-6)


def test_peephole_output_gate_uses_the_new_state():
    values, x, (o, state), (lit_out, _, _, _) = _cell_values("peephole")
    new_state_out, _ = numpy_lstm(values, x, o, state, peephole=True)
    # What the output would be if the output gate looked at the old state instead.
    z = x @ values["ox"] + o @ values["om"] + values["ob"] + state * values["oc"]
    _, new_state = numpy_lstm(values, x, o, state, peephole=True)
    old_state_out = sigmoid(z) * np.tanh(new_state)
    np.testing.assert_allclose(lit_out, new_state_out, rtol=1e-5, atol=1e-6)
    assert np.abs(lit_out - old_state_out).max() > 1e-3


def test_gru_matches_numpy():
    values, x, (o,), (lit_out, lit_states, fused_out, fused_states) = _cell_values("gru")
    expected = numpy_gru(values, x, o)
    for out, states in ((lit_out, lit_states), (fused_out, fused_states)):
        assert len(states) == 1                       # the GRU keeps only an output state
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_variable_names_are_the_books():
    with tf.Graph().as_default():
        CELLS["lstm"](V, H, seed=0)
        CELLS["gru"](V, H, seed=0)
        names = {v.op.name for v in tf1.global_variables()}
    assert {"ix", "im", "ib", "fx", "fm", "fb", "cx", "cm", "cb", "ox", "om", "ob"} <= names
    assert {"rx", "rh", "rb", "hx", "hh", "hb", "zx", "zh", "zb"} <= {n.split("_")[0] for n in names}
