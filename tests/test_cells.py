"""Every cell's four forms on the same weights: the book's one-hot products (`literal`), the row look-ups
(`fused`), the fast graph's training pass (`fast_language_model`) and the numpy step (`numpy_step`)."""
import numpy as np
import pytest
import tensorflow as tf

from reproduce.cells import CELLS, numpy_sigmoid
from reproduce.numpy_steps import NumpyModel

tf1 = tf.compat.v1
V, H, B = 11, 6, 4
CLOSE = dict(rtol=1e-5, atol=1e-6)


def _unrolled_cell(name, steps):
    """The cell unrolled `steps` times in each form from the same random weights, ids and states.

    Returns (the inputs: weights by variable name, ids and starting states; one dict of numpy results per
    form; the gradients of the literal unroll's loss and of the fast pass's, by variable). The fast pass
    runs in the textbook gradient mode (`first_step_reads_final_state=False`), the one autodiff of the
    literal unroll gives; tests/test_variable_semantics.py covers the other mode on the whole graph.
    """
    rng = np.random.RandomState(0)
    with tf.Graph().as_default():
        cell = CELLS[name](V, H, seed=7)
        w = tf1.Variable(tf.zeros([H, V]), name="w")
        b = tf1.Variable(tf.zeros([V]), name="b")
        variables = tf1.trainable_variables()
        # Random values large enough that every term matters.
        weights = {v.op.name: rng.normal(0, 0.5, v.shape.as_list()).astype(np.float32) for v in variables}
        ids = rng.randint(0, V, [steps, B])
        labels = rng.randint(0, V, [steps, B])
        start = tuple(rng.normal(0, 1, [B, H]).astype(np.float32) for _ in cell.state_names)

        x_weights, x_biases = cell.input_weights()
        table = tf.concat(x_weights, axis=1) + tf.concat(x_biases, axis=1)
        forms = {}
        for form in ("literal", "fused"):
            states, outputs = start, []
            for t in range(steps):
                if form == "literal":
                    output, states = cell.literal(tf.one_hot(ids[t], V), states)
                else:
                    output, states = cell.fused(tf.gather(table, ids[t]), states)
                outputs.append(output)
            forms[form] = dict(outputs=tf.concat(outputs, axis=0), states=states)
        logits = tf.matmul(forms["literal"]["outputs"], w) + b
        literal_loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels.reshape(-1), logits=logits))
        fast = cell.fast_language_model(table, w, b, tf.constant(ids), tf.constant(labels), start, [None] * steps,
                                        save_dropped_output=True, first_step_reads_final_state=False)
        forms["fast"] = dict(outputs=fast.outputs, states=fast.saved_states, loss=fast.loss)
        forms["literal"]["loss"] = literal_loss
        gradients = {"literal": tf.gradients(literal_loss, variables), "fast": tf.gradients(fast.loss, variables)}

        with tf1.Session() as session:
            for v in variables:
                v.load(weights[v.op.name], session)
            results, gradients = session.run([forms, gradients])
            numpy_model = NumpyModel.from_session(session, cell, w, b)

    states, outputs = start, []
    for t in range(steps):
        output, states = numpy_model.step(ids[t], states)
        outputs.append(output)
    results["numpy"] = dict(outputs=np.concatenate(outputs), states=states)
    names = [v.op.name for v in variables]
    inputs = dict(weights=weights, ids=ids, start=start)
    return inputs, results, {form: dict(zip(names, values)) for form, values in gradients.items()}


@pytest.mark.parametrize("steps", [1, 7])         # one step; a few, across the fast pass's chunks of 5 steps
@pytest.mark.parametrize("name", list(CELLS))
def test_literal_fused_fast_and_numpy_steps_agree(name, steps):
    _, results, gradients = _unrolled_cell(name, steps)
    literal = results["literal"]
    assert len(literal["states"]) == len(CELLS[name].state_names)
    assert np.abs(literal["outputs"]).max() > 0.1                     # the forms compare something
    for form in ("fused", "fast", "numpy"):
        np.testing.assert_allclose(results[form]["outputs"], literal["outputs"], **CLOSE, err_msg=form)
        assert len(results[form]["states"]) == len(literal["states"]), form
        for state, expected in zip(results[form]["states"], literal["states"]):
            np.testing.assert_allclose(state, expected, **CLOSE, err_msg=form)
    np.testing.assert_allclose(results["fast"]["loss"], literal["loss"], rtol=1e-5)
    for variable, expected in gradients["literal"].items():
        scale = np.abs(expected).max()
        assert scale > 0, variable
        np.testing.assert_allclose(gradients["fast"][variable], expected, rtol=0, atol=1e-5 * scale, err_msg=variable)


def test_peephole_output_gate_uses_the_new_state():
    inputs, results, _ = _unrolled_cell("peephole", 1)
    p, (o, old_state) = inputs["weights"], inputs["start"]
    output, new_state = results["literal"]["outputs"], results["literal"]["states"][1]
    gate_input = p["ox"][inputs["ids"][0]] + o @ p["om"] + p["ob"]
    looking_at_new_state = numpy_sigmoid(gate_input + new_state * p["oc"]) * np.tanh(new_state)
    looking_at_old_state = numpy_sigmoid(gate_input + old_state * p["oc"]) * np.tanh(new_state)
    np.testing.assert_allclose(output, looking_at_new_state, **CLOSE)
    assert np.abs(output - looking_at_old_state).max() > 1e-3


def test_variable_names_are_the_books():
    with tf.Graph().as_default():
        CELLS["lstm"](V, H, seed=0)
        CELLS["gru"](V, H, seed=0)
        names = {v.op.name for v in tf1.global_variables()}
    assert {"ix", "im", "ib", "fx", "fm", "fb", "cx", "cm", "cb", "ox", "om", "ob"} <= names
    assert {"rx", "rh", "rb", "hx", "hh", "hb", "zx", "zh", "zb"} <= {n.split("_")[0] for n in names}
