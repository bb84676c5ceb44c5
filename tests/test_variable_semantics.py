"""TensorFlow 1's reference variables: a gradient reads a variable when it runs, after the assigns it follows.

The book's training loss sits under `control_dependencies` on the saved-state assigns, so in TensorFlow
1.x the first unrolled step's gradient terms read the state the unroll ended with (model.py,
`BookModel._state_variables`). `state_variables="reference"` (the book recipes' default) mirrors it;
`"resource"` is the textbook gradient.
"""
import numpy as np
import pytest
import tensorflow as tf

from reproduce.recipes import recipe_config
from reproduce.data import BatchGenerator, load_corpus
from reproduce.model import BookModel
from reproduce.session import session_config

tf1 = tf.compat.v1


@pytest.mark.parametrize("use_resource", [False, True])
def test_a_gradient_reads_a_reference_variable_after_the_assign_it_follows(use_resource):
    """The mechanism alone: out = s·w with s = 1; then s := 10·out = 30; loss = exp(out / 100)."""
    graph = tf.Graph()
    with graph.as_default():
        s = tf1.Variable([[1.0]], trainable=False, use_resource=use_resource)
        w = tf1.Variable([[3.0]])
        out = tf.matmul(s, w)
        with tf.control_dependencies([s.assign(out * 10)]):
            loss = tf.reduce_sum(tf.exp(out * 0.01))     # its gradient op needs this op's output: after the assign
        (grad,) = tf.gradients(loss, [w])
        with tf1.Session(graph=graph) as session:
            session.run(tf1.global_variables_initializer())
            loss_value, grad_value = session.run([loss, grad])
    assert loss_value == pytest.approx(np.exp(0.03))            # the forward pass read s = 1 either way
    s_read_by_the_gradient = 1.0 if use_resource else 30.0      # d loss / d w = 0.01 exp(0.03) * s
    assert grad_value[0, 0] == pytest.approx(0.01 * np.exp(0.03) * s_read_by_the_gradient, rel=1e-5)


@pytest.fixture(scope="module")
def corpus(grimm_dir):
    return load_corpus(grimm_dir, 12)


def _first_gradients(corpus, recipe, state_variables, graph="faithful"):
    """Every trainable variable's gradient in the first iteration from a zero state, and the variables' names."""
    config = recipe_config(recipe, num_nodes=16, batch_size=8, num_unrollings=6, seed=2, graph=graph,
                           state_variables=state_variables)
    model = BookModel(config, corpus.vocabulary_size)
    inputs, labels = BatchGenerator(corpus.data_list[3], config.batch_size, config.num_unrollings).unroll_ids()
    with model.graph.as_default():
        variables = tf1.trainable_variables()
        gradients = tf.gradients(model.loss, variables)
    with tf1.Session(graph=model.graph, config=session_config()) as session:
        session.run(model.init)
        values = session.run(gradients, model.train_feed(inputs, labels, 0))
    return {v.op.name: g for v, g in zip(variables, values)}


@pytest.mark.parametrize("recipe, differing", [
    # The LSTM: o·im, o·fm, o·cm, o·om read the saved output; forget_gate * state the saved state (fx, fb, fm).
    ("book-notebook", {"im", "fm", "cm", "om", "fx", "fb"}),
    # The GRU: o·rh, (r * o) through r, (1 - z) * o and o·zh read the saved output.
    ("book-gru", {"rx", "rb", "rh", "zx", "zb", "zh"}),
])
def test_the_first_steps_state_terms_are_the_only_gradients_that_change(corpus, recipe, differing):
    reference = _first_gradients(corpus, recipe, "reference")
    resource = _first_gradients(corpus, recipe, "resource")
    changed = {name for name in reference if not np.array_equal(reference[name], resource[name])}
    assert changed == differing
    for name in differing:                                       # a real difference, not rounding
        assert np.abs(reference[name] - resource[name]).max() > 1e-3 * np.abs(resource[name]).max(), name


@pytest.mark.parametrize("state_variables", ["reference", "resource"])
@pytest.mark.parametrize("recipe", ["book", "book-peephole", "book-gru"])
def test_the_fast_graph_computes_the_faithful_graphs_gradients_in_both_modes(corpus, recipe, state_variables):
    """The fast LSTM's hand-written backward pass builds the quirk explicitly; the other cells get it from
    TensorFlow. One iteration's gradients are compared closely enough to tell the two modes apart (they
    differ by more than 1e-3 of a gradient's largest entry, the test above)."""
    faithful = _first_gradients(corpus, recipe, state_variables, graph="faithful")
    fast = _first_gradients(corpus, recipe, state_variables, graph="fast")
    assert fast.keys() == faithful.keys()
    for name in faithful:
        scale = np.abs(faithful[name]).max()
        np.testing.assert_allclose(fast[name], faithful[name], rtol=0, atol=1e-5 * scale, err_msg=name)
