"""The graph: saved state carried between session.run calls, resets, and the two paths computing the same."""
import numpy as np
import pytest
import tensorflow as tf

from reproduce.recipes import recipe_config
from reproduce.data import BatchGenerator, load_corpus
from reproduce.model import BookModel
from reproduce.numpy_steps import NumpyModel
from reproduce.session import session_config

tf1 = tf.compat.v1


@pytest.fixture(scope="module")
def corpus(grimm_dir):
    return load_corpus(grimm_dir, 12)


def _config(recipe="book", **overrides):
    values = dict(num_nodes=24, batch_size=8, num_unrollings=6, seed=5)
    values.update(overrides)
    return recipe_config(recipe, **values)


def _variables(session, model):
    with model.graph.as_default():
        return {v.op.name: session.run(v) for v in tf1.global_variables()}


@pytest.mark.parametrize("graph", ["fast", "faithful"])
def test_train_state_is_saved_after_a_run_and_carried_into_the_next(corpus, graph):
    config = _config("book-notebook", graph=graph)              # no dropout: the state is the cell's
    model = BookModel(config, corpus.vocabulary_size)
    generator = BatchGenerator(corpus.data_list[0], config.batch_size, config.num_unrollings)
    with tf1.Session(graph=model.graph, config=session_config()) as session:
        session.run(model.init)
        states = (np.zeros([config.batch_size, config.num_nodes], np.float32),) * 2      # output, cell state
        for iteration in range(3):
            # The weights this iteration's forward pass uses, as numpy steps (tests/test_cells.py holds them
            # to the graph's steps).
            steps = NumpyModel.from_session(session, model.cell, model.w, model.b)
            inputs, labels = generator.unroll_ids()
            session.run(model.optimizer, model.train_feed(inputs, labels, iteration))
            for step_ids in inputs:                         # carried from the previous iteration
                _, states = steps.step(step_ids, states)
            saved_output, saved_state = session.run(model.train_state)
            np.testing.assert_allclose(saved_output, states[0], rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(saved_state, states[1], rtol=1e-4, atol=1e-6)
        assert np.abs(saved_state).max() > 1e-3
        session.run(model.reset_train_state)
        assert all(not np.any(v) for v in session.run(model.train_state))


def test_valid_and_test_state_carry_and_reset(corpus):
    model = BookModel(_config(), corpus.vocabulary_size)
    with tf1.Session(graph=model.graph, config=session_config()) as session:
        session.run(model.init)
        first = session.run(model.valid_prediction, model.valid_feed(3, 4))
        second = session.run(model.valid_prediction, model.valid_feed(3, 4))
        assert not np.allclose(first, second)                   # the second run starts from the saved state
        session.run(model.reset_valid_state)
        assert all(not np.any(v) for v in session.run(model.valid_state))
        np.testing.assert_allclose(session.run(model.valid_prediction, model.valid_feed(3, 4)), first, rtol=1e-6)
        # Book quirk: the test state resets to noise (stddev 0.05), the same noise for the same seed.
        session.run(model.reset_test_state, {model.reset_seed: [1, 2]})
        noise = session.run(model.test_state)
        assert 0.02 < np.std(noise) < 0.1 and not np.allclose(noise[0], noise[1])
        session.run(model.reset_test_state, {model.reset_seed: [1, 2]})
        np.testing.assert_array_equal(session.run(model.test_state), noise)


@pytest.mark.parametrize("state_variables", ["reference", "resource"])
@pytest.mark.parametrize("recipe, unrollings", [("book", 6), ("book", 13), ("book-gru", 6), ("book-peephole", 6)])
def test_fast_and_faithful_paths_train_identically(corpus, recipe, unrollings, state_variables):
    """Issue 3: same initial values, same batches -> same losses and variables after 20 iterations, with
    TensorFlow 1's reference-variable gradient (the fast LSTM builds it by hand) and with the textbook one.

    The fast LSTM cuts the unroll into chunks of 5 steps: 6 and 13 unrollings end in a partial chunk."""
    runs = {}
    for graph in ("faithful", "fast"):
        model = BookModel(_config(recipe, graph=graph, num_unrollings=unrollings, state_variables=state_variables),
                          corpus.vocabulary_size)
        generator = BatchGenerator(corpus.data_list[2], model.config.batch_size, model.config.num_unrollings)
        with tf1.Session(graph=model.graph, config=session_config()) as session:
            session.run(model.init)
            initial = _variables(session, model)
            losses = []
            for iteration in range(20):
                inputs, labels = generator.unroll_ids()
                _, loss, perplexity = session.run([model.optimizer, model.loss, model.train_perplexity_without_exp],
                                                  model.train_feed(inputs, labels, iteration))
                losses.append((loss, perplexity))
            runs[graph] = initial, np.array(losses), _variables(session, model)
    (init_a, losses_a, final_a), (init_b, losses_b, final_b) = runs["faithful"], runs["fast"]
    assert init_a.keys() == init_b.keys()
    for name in init_a:
        np.testing.assert_array_equal(init_a[name], init_b[name], err_msg=name)
    np.testing.assert_allclose(losses_b, losses_a, rtol=1e-5)
    assert losses_a[-1, 0] < losses_a[0, 0]                     # it did learn something
    for name in final_a:
        np.testing.assert_allclose(final_b[name], final_a[name], rtol=1e-5, atol=1e-5, err_msg=name)


def test_dropout_masks_drop_the_configured_share_and_follow_the_seed(corpus):
    model = BookModel(_config("book", num_unrollings=20, batch_size=32, num_nodes=64), corpus.vocabulary_size)
    with tf1.Session(graph=model.graph) as session:
        masks = np.array(session.run(model.dropout_masks, {model.dropout_seed: [5, 0]}))
        again = np.array(session.run(model.dropout_masks, {model.dropout_seed: [5, 0]}))
        other = np.array(session.run(model.dropout_masks, {model.dropout_seed: [5, 1]}))
    assert set(np.unique(masks)) == {0.0, np.float32(1 / 0.8)}                  # kept outputs scaled by 1/keep
    assert abs((masks == 0).mean() - 0.2) < 0.01
    np.testing.assert_array_equal(masks, again)
    assert (masks != other).mean() > 0.2 and (masks[0] != masks[1]).mean() > 0.2   # per iteration, per step
