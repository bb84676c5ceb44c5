"""Beam search on a tiny trained model: equals greedy with one beam, finds the best pair with every beam."""
import itertools

import numpy as np
import pytest
import tensorflow as tf

from reproduce.beam import BeamGraph, beam_generate, beam_segment
from reproduce.config import recipe_config
from reproduce.data import BatchGenerator, load_corpus
from reproduce.model import BookModel
from reproduce.session import session_config
from reproduce.sample import generate_ids, sample_greedy

tf1 = tf.compat.v1


@pytest.fixture(scope="module", params=["book", "book-gru", "book-peephole"])
def trained(request, grimm_dir):
    """A small model trained for a few iterations on 4 stories, so its distributions are not flat."""
    corpus = load_corpus(grimm_dir, 4)
    config = recipe_config(request.param, num_nodes=16, batch_size=8, num_unrollings=8, seed=3)
    model = BookModel(config, corpus.vocabulary_size)
    session = tf1.Session(graph=model.graph, config=session_config())
    session.run(model.init)
    generator = BatchGenerator(corpus.data_list[0], 8, 8)
    for iteration in range(60):
        session.run(model.optimizer, model.train_feed(*generator.unroll_ids(), iteration))
    yield session, model
    session.close()


def test_one_beam_with_a_deterministic_choice_is_greedy(trained):
    session, model = trained
    with model.graph.as_default():
        greedy = generate_ids(session, model, 5, 20, sample_greedy, np.random.RandomState(0))
        beam = beam_generate(session, model, [5], 20, beam_length=4, beam_neighbors=1,
                             rng=np.random.RandomState(0), final="best")
    assert beam == greedy


def test_two_bigram_beam_with_every_neighbour_finds_the_most_probable_pair(trained):
    session, model = trained
    V = model.vocabulary_size
    with model.graph.as_default():
        beam = BeamGraph(model, V)
        session.run(beam.init)
        start = 7
        # Enumerate: p(a | start) * p(b | start, a) for every pair (a, b).
        first = beam.step(session, [start] * V)[0].astype(np.float64)
        second = beam.step(session, np.arange(V)).astype(np.float64)          # row a: p(. | start, a)
        joint = first[:, None] * second
        best_pair = list(np.unravel_index(np.argmax(joint), joint.shape))
        session.run(beam.reset)
        found = beam_segment(session, beam, start, beam_length=2, rng=np.random.RandomState(0), final="best")
    assert found == [int(i) for i in best_pair]
    assert joint[tuple(best_pair)] == joint.max()


def test_segments_and_the_book_variant(trained):
    session, model = trained
    with model.graph.as_default():
        ids = beam_generate(session, model, [3, 9], 23, beam_length=5, beam_neighbors=4,
                            rng=np.random.RandomState(1))
        book = beam_generate(session, model, [3, 9], 23, beam_length=5, beam_neighbors=4,
                             rng=np.random.RandomState(1), book_quirks=True)
    assert len(ids) == 20 and len(book) == 20                  # 23 // 5 segments of 5 bigrams
    assert all(0 <= i < model.vocabulary_size for i in itertools.chain(ids, book))
