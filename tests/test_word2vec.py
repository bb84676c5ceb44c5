"""CBOW word vectors: the book's batches, a tiny training run, and the book's embeddings.npy (loaded, checked,
downloaded from a local server)."""
import hashlib

import numpy as np
import pytest

from conftest import SHARED
from http_server import StoryServer
from reproduce.errors import UserError
from reproduce.word2vec import (BOOK_EMBEDDINGS_SHA256, BOOK_EMBEDDINGS_SHAPE, BOOK_PROBE_WORDS, CBOWBatches,
                                CBOWConfig, book_batch_examples, download_book_embeddings, load_book_embeddings,
                                nearest_neighbours, neighbour_lines, save_embeddings, shared_neighbours,
                                train_cbow)
from reproduce.words import load_words, untied_ids

GOLDEN = SHARED / "golden"
BOOK_EMBEDDINGS = GOLDEN / "book_ch8_embeddings.npy"


@pytest.fixture(scope="module")
def corpus(grimm_dir):
    return load_words(grimm_dir, 100)


def test_batch_example_is_the_books(corpus):
    log = (GOLDEN / "book_ch8_word2vec_output.txt").read_text().splitlines()
    first = log.index("with window_size = 1:")
    assert book_batch_examples(corpus.data_list, corpus.reverse_dictionary) == log[first - 1:first + 7]


def test_batches_skip_a_span_between_two_batches_and_wrap():
    document = np.arange(20)
    batches = CBOWBatches([document], window_size=1)
    context, labels = batches.next_batch(0, 4)
    assert context.tolist() == [[0, 2], [1, 3], [2, 4], [3, 5]] and labels[:, 0].tolist() == [1, 2, 3, 4]
    assert batches.cursors == [7]                        # 3 (the span) + 4 (the batch)
    context, labels = batches.next_batch(0, 12)
    assert labels[:, 0].tolist() == [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
    assert context[-1].tolist() == [18, 0]               # the window wraps to the start of the document
    assert context.dtype == labels.dtype == np.int32 and labels.shape == (12, 1)


def test_neighbours_as_the_book_printed_them():
    words = ["UNK", "said", "replied", "cried", "answered", "asked", "king"]
    angles = np.array([3.0, 0.0, 0.1, 0.2, 0.3, 0.4, 1.5])
    embeddings = np.stack([np.cos(angles), np.sin(angles)], axis=1) * np.arange(1, 8)[:, None]   # any lengths
    neighbours = nearest_neighbours(embeddings, words, ["said", "absent"])
    assert neighbour_lines(neighbours) == ["Nearest to said: replied, cried, answered, asked,"]


def test_tiny_training_learns(grimm_dir):
    corpus = load_words(grimm_dir, 3)
    printed = []
    result = train_cbow(corpus.data_list, corpus.reverse_dictionary, CBOWConfig.tiny(), log=printed.append)
    V = corpus.vocabulary_size
    assert result.embeddings.shape == (V, 16) and result.embeddings.dtype == np.float32
    assert np.allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-5)
    losses = [entry["mean_loss"] for entry in result.history]
    assert len(losses) == 4 and losses[-1] < 0.8 * losses[0], losses
    assert result.history[0]["book_average_loss"] == pytest.approx(losses[0] * 3 * 50)   # the book's first sum
    probes = [word for word in BOOK_PROBE_WORDS if word in corpus.dictionary]
    assert list(result.neighbours) == probes and len(probes) >= 10
    for word, close in result.neighbours.items():
        assert len(close) == 4 and word not in close and set(close) <= set(corpus.reverse_dictionary)
    assert sum(line.startswith("Nearest to ") for line in printed) == 2 * len(probes)       # passes 2 and 4


def test_training_is_repeatable_with_a_seed(grimm_dir):
    corpus = load_words(grimm_dir, 2)
    config = CBOWConfig.tiny()
    config.num_steps, config.steps_per_doc = 1, 20
    runs = [train_cbow(corpus.data_list, corpus.reverse_dictionary, config, log=lambda line: None)
            for _ in range(2)]
    assert np.array_equal(runs[0].embeddings, runs[1].embeddings)


def test_saved_embeddings_load_back(tmp_path):
    vectors = np.random.RandomState(0).rand(5, 3).astype(np.float32)
    save_embeddings(tmp_path / "embeddings.npy", vectors)
    assert np.array_equal(np.load(tmp_path / "embeddings.npy"), vectors)
    assert [p.name for p in tmp_path.iterdir()] == ["embeddings.npy"]


def test_the_books_embeddings_load_and_are_checked(tmp_path):
    embeddings = load_book_embeddings(BOOK_EMBEDDINGS)
    assert embeddings.shape == BOOK_EMBEDDINGS_SHAPE and embeddings.dtype == np.float32
    assert hashlib.sha256(BOOK_EMBEDDINGS.read_bytes()).hexdigest() == BOOK_EMBEDDINGS_SHA256
    changed = tmp_path / "embeddings.npy"
    np.save(changed, embeddings * 2)
    with pytest.raises(UserError, match="not the book's embeddings.npy"):
        load_book_embeddings(changed)
    with pytest.raises(UserError, match="cannot read"):
        load_book_embeddings(tmp_path / "absent.npy")
    with pytest.raises(UserError, match="1322 rows"):
        load_book_embeddings(BOOK_EMBEDDINGS, vocabulary_size=100)


def test_neighbours_searched_among_given_rows_only():
    words = ["a", "b", "c", "d", "e"]
    vectors = np.array([[1, 0], [0.99, 0.1], [0.9, 0.3], [0, 1], [0.1, 1]], dtype=np.float32)
    assert nearest_neighbours(vectors, words, ["a", "d"], top_k=2) == {"a": ["b", "c"], "d": ["e", "c"]}
    assert nearest_neighbours(vectors, words, ["a", "b"], top_k=2, rows=[0, 2, 3]) == {"a": ["c", "d"]}


def test_the_books_embeddings_know_the_books_frequent_words(corpus):
    """Rows of words with a count of their own have our ids: their neighbours are the book's synonyms."""
    neighbours = nearest_neighbours(load_book_embeddings(BOOK_EMBEDDINGS), corpus.reverse_dictionary,
                                    ["said", "my"], top_k=3)
    assert {"replied", "answered"} <= set(neighbours["said"]) and {"your", "his"} <= set(neighbours["my"])


def test_download_checks_and_keeps_the_books_file(tmp_path):
    with StoryServer(GOLDEN) as server:
        target = tmp_path / "ch8" / "embeddings.npy"
        embeddings = download_book_embeddings(target, url=server.url + BOOK_EMBEDDINGS.name, retries=0)
        assert embeddings.shape == BOOK_EMBEDDINGS_SHAPE and target.read_bytes() == BOOK_EMBEDDINGS.read_bytes()
        download_book_embeddings(target, url=server.url + BOOK_EMBEDDINGS.name, retries=0)
        assert server.requests[BOOK_EMBEDDINGS.name] == 1          # present and right: not fetched again


def test_download_refuses_another_file_and_saves_nothing(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    np.save(served / "embeddings.npy", np.zeros((1322, 128), dtype=np.float32))
    target = tmp_path / "ch8" / "embeddings.npy"
    with StoryServer(served) as server:
        with pytest.raises(UserError, match="embeddings.npy: the server sent binary data"):
            download_book_embeddings(target, url=server.url + "embeddings.npy", retries=0)
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_shared_neighbours_tells_alike_from_unrelated():
    vectors = np.random.RandomState(0).randn(60, 8)
    rows = np.arange(0, 60, 2)
    assert shared_neighbours(vectors, vectors, rows, top_k=5) == 1.0
    assert shared_neighbours(vectors, vectors * 3 + 1e-6, rows, top_k=5) == 1.0
    unrelated = np.random.RandomState(1).randn(60, 8)
    assert shared_neighbours(vectors, unrelated, rows, top_k=5) < 0.5


def test_untied_ids_are_unk_and_frequent_words_whose_rows_the_book_shares(corpus):
    """147 ids keep their word in any tie order (none past id 322); the book's rows there are its own
    neighbourhoods, which a shuffle of its rows destroys."""
    book = load_book_embeddings(BOOK_EMBEDDINGS)
    untied = untied_ids(corpus.counter, corpus.reverse_dictionary)
    assert len(untied) == 147 and untied[:3] == [0, 1, 2] and max(untied) < 400
    shuffled = book[np.random.RandomState(0).permutation(len(book))]
    assert shared_neighbours(book, book, untied) == 1.0
    assert shared_neighbours(book, shuffled, untied) < 0.2
