"""Beam search on a tiny trained model: equals greedy with one beam, finds the best pair with every beam."""
import itertools

import numpy as np
import pytest
import tensorflow as tf

from reproduce.beam import BeamGraph, beam_generate, beam_segment
from reproduce.recipes import recipe_config
from reproduce.data import BatchGenerator, load_corpus
from reproduce.model import BookModel
from reproduce.session import session_config
from reproduce.sample import generate_ids, sample_greedy

tf1 = tf.compat.v1


@pytest.fixture(scope="module", params=["book", "book-gru", "book-peephole"])
def trained(request, grimm_dir):
    """A small model trained for a few iterations on the first story, so its distributions are not flat; the
    vocabulary of that story (102 bigrams) keeps the beams that cover all of it few."""
    corpus = load_corpus(grimm_dir, 1)
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
    start = 7
    with model.graph.as_default():
        beam = BeamGraph(model, V)
        session.run(beam.init)
        found = beam_segment(session, beam, start, beam_length=2, rng=np.random.RandomState(0), final="best")
        # Exhaustively, with the model's own step (one row per first bigram, from the state after `start`):
        # p(a | start) * p(b | start, a) for every pair (a, b). The same beams, back to their zero state.
        session.run(beam.reset)
        first = beam.step(session, [start] * V)[0].astype(np.float64)
        second = beam.step(session, np.arange(V)).astype(np.float64)     # row a: p(. | start, a)
    joint = first[:, None] * second
    assert joint[found[0], found[1]] == joint.max()
    assert (joint >= joint.max()).sum() == 1                    # one best pair, so the beam's is that one


class TableBeam:
    """A stand-in for BeamGraph whose next-bigram distribution depends on the last bigram only."""

    def __init__(self, table, size):
        self.table, self.size = np.asarray(table), size

    def step(self, session, ids):
        return self.table[np.asarray(ids)]

    def keep(self, session, parents):
        pass


def test_beam_book_keeps_the_books_two_quirks():
    # From bigram 0 the beams are 1 (0.5) and 2 (0.4, the runner-up). Bigram 1 continues with 0 (0.35) or 3 (0.3);
    # bigram 2 with 3 (0.6) or 2 (0.4). Joint probabilities: 1-0 0.175, 1-3 0.15, 2-3 0.24, 2-2 0.16.
    table = [[0.05, 0.5, 0.4, 0.05],
             [0.35, 0.05, 0.3, 0.3],
             [0.0, 0.0, 0.4, 0.6],
             [0.25, 0.25, 0.25, 0.25]]
    beam = TableBeam(table, size=2)
    segment = lambda quirks: beam_segment(None, beam, 0, beam_length=2, rng=np.random.RandomState(0),  # noqa: E731
                                          final="best", book_quirks=quirks)
    assert segment(False) == [2, 3]             # the most probable pair
    # The book ranks children by their own probability (2-3 0.6, 2-2 0.4: both beams from 2), draws 2-3 as the
    # most probable, then continues from parent_beam_indices[drawn], beam 1: 2-2. Without the first quirk the
    # beams are 2-3 and 1-0, and the drawn 2-3's parent index (1) names 1-0; without the second, 2-3 is kept.
    assert segment(True) == [2, 2]


def test_segments_and_the_book_variant(trained):
    session, model = trained
    with model.graph.as_default():
        ids = beam_generate(session, model, [3, 9], 23, beam_length=5, beam_neighbors=4,
                            rng=np.random.RandomState(1))
        book = beam_generate(session, model, [3, 9], 23, beam_length=5, beam_neighbors=4,
                             rng=np.random.RandomState(1), book_quirks=True)
    assert len(ids) == 20 and len(book) == 20                  # 23 // 5 segments of 5 bigrams
    assert all(0 <= i < model.vocabulary_size for i in itertools.chain(ids, book))


# ---------------------------------------------------------------- --no-repeat-ngram
from reproduce.beam import repeating_child  # noqa: E402

# Bigram 0 (two spaces, say) is followed by itself with 0.9: every beam stays on it, as the book recipe's LSTM
# does on spaces. From 1 and 2 the next is 0 or the other one.
SPACES = [[0.9, 0.06, 0.04],
          [0.5, 0.1, 0.4],
          [0.5, 0.4, 0.1]]


def immediate_repeats(ids, n, start):
    """Where the n ids ending at or after `start` repeat the n right before them."""
    return [i for i in range(max(start - n + 1, n), len(ids) - n + 1) if ids[i:i + n] == ids[i - n:i]]


def test_repeating_child_is_the_id_that_would_repeat_the_last_n_gram():
    assert repeating_child([4, 0], 1) == 0                   # n=1: the last id again
    assert repeating_child([1, 2, 1], 2) == 2                # 1 2 1 [2]
    assert repeating_child([1, 2, 3], 2) is None
    assert repeating_child([7, 1, 2, 3, 1, 2], 3) == 3       # 1 2 3 1 2 [3]
    assert repeating_child([1, 2, 1, 2], 3) is None
    assert repeating_child([2, 1], 2) is None                # too short to hold a repeat


@pytest.mark.parametrize("book_quirks", [False, True])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_removes_the_immediate_repeat_that_happens_without_it(n, book_quirks):
    beam = TableBeam(SPACES, size=2)
    primer = [1, 0, 0]                                       # the primer counts as history

    def story(no_repeat):
        history = list(primer)
        for _ in range(4):
            history += beam_segment(None, beam, history[-1], beam_length=5, rng=np.random.RandomState(0),
                                    final="best", book_quirks=book_quirks, no_repeat_ngram=no_repeat,
                                    history=history)
        return history

    without = story(None)
    assert without == primer + [0] * 20                       # one run of spaces
    assert immediate_repeats(without, n, len(primer))
    with_option = story(n)
    assert len(with_option) == len(without)
    assert immediate_repeats(with_option, n, len(primer)) == []
    # An N no history is long enough to repeat forbids nothing: the same story as without the option.
    assert story(50) == without


def test_without_the_option_beam_generate_is_unchanged(trained):
    session, model = trained
    with model.graph.as_default():
        runs = [beam_generate(session, model, [3, 9], 30, beam_length=5, beam_neighbors=4,
                              rng=np.random.RandomState(2), book_quirks=quirks, **extra)
                for quirks in (False, True) for extra in ({}, {"no_repeat_ngram": None}, {"no_repeat_ngram": 40})]
        limited = beam_generate(session, model, [3, 9], 30, beam_length=5, beam_neighbors=4,
                                rng=np.random.RandomState(2), no_repeat_ngram=1)
    assert runs[0] == runs[1] == runs[2] and runs[3] == runs[4] == runs[5]
    assert immediate_repeats([3, 9] + limited, 1, 2) == []
