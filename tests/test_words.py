"""The stories read as words: the book's fingerprint exactly, and its dictionary up to the order of ties."""
import json

import pytest

from conftest import SHARED
from reproduce.data import UNK
from reproduce.errors import UserError
from reproduce.words import BOOK_ABBREVIATIONS, fingerprint, load_words, read_words, tie_blocks, tokenize

NOTEBOOKS = ("lstm_word2vec.ipynb", "lstm_word2vec_rnn_api.ipynb")


@pytest.fixture(scope="module")
def golden():
    return json.loads((SHARED / "golden" / "book_ch8_words_fingerprint.json").read_text())


@pytest.fixture(scope="module")
def corpus(grimm_dir):
    return load_words(grimm_dir, 100)


@pytest.fixture(scope="module")
def ours(corpus):
    return fingerprint(corpus)


def test_every_story_has_the_books_words(ours, golden):
    assert len(ours["documents"]) == len(golden["documents"]) == 100
    for mine, book in zip(ours["documents"], golden["documents"]):
        assert (mine["file"], mine["tokens"], mine["first_50"]) == (book["file"], book["tokens"], book["first_50"])


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_dictionary_printouts_that_do_not_depend_on_ties(ours, golden, notebook):
    book = golden["dictionary_printouts"][notebook]
    assert ours["total_words"] == book["total_words"] == 202036
    assert ours["most_common_5"] == book["most_common_5"]
    assert ours["vocabulary_size"] == book["vocabulary_size"] == 1322


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_book_ids_fall_in_our_tie_blocks(corpus, golden, notebook):
    """Each printed sample id is ours when its word has no tie, and lies in the block of its word's count
    otherwise; the least common words printed are words seen once, as ours are."""
    book = golden["dictionary_printouts"][notebook]
    blocks = tie_blocks(corpus.counter, corpus.reverse_dictionary)
    untied = 0
    for document, book_ids in enumerate(book["sample_data"]):
        for word, our_id, book_id in zip(corpus.documents[document], corpus.data_list[document], book_ids):
            if our_id == 0:
                assert book_id == 0, word
                continue
            first, last = blocks[corpus.counter[word]]
            assert first <= book_id <= last, (word, book_id, (first, last))
            if first == last:
                assert book_id == our_id, word
                untied += 1
    assert untied >= 10                  # "in", "one", ",", "by", "a", ... are the same ids in every order
    assert all(corpus.counter[word] == count == 1 for word, count in book["least_common_15"])


def test_ties_follow_first_occurrence(corpus):
    """Inside a block of equal counts, ids follow the words' first appearance in the stories."""
    first_seen = {}
    for words in corpus.documents:
        for word in words:
            first_seen.setdefault(word, len(first_seen))
    ids_of_count = {}
    for index, word in enumerate(corpus.reverse_dictionary[1:], start=1):
        ids_of_count.setdefault(corpus.counter[word], []).append(first_seen[word])
    assert any(len(order) > 1 for order in ids_of_count.values())
    assert all(order == sorted(order) for order in ids_of_count.values())
    assert corpus.reverse_dictionary[0] == UNK
    assert corpus.data_list[0][:2].tolist() == [corpus.dictionary["in"], 0]     # "olden" is rare: UNK


@pytest.mark.parametrize("text, words", [
    ("st. peter said, `bleat.", ["st.", "peter", "said", ",", "`bleat", "."]),
    ("he went to wash. besides, she was ill. then", ["he", "went", "to", "wash.", "besides", ",", "she", "was",
                                                     "ill.", "then"]),
    ("he went home. besides, she was well.", ["he", "went", "home", ".", "besides", ",", "she", "was", "well", "."]),
    ('"no," said he. "ha!"', ["``", "no", ",", "''", "said", "he", ".", "``", "ha", "!", "''"]),
    ("it's a king's son. don't", ["it", "'s", "a", "king", "'s", "son", ".", "do", "n't"]),
])
def test_tokenize_keeps_the_books_abbreviations_and_treebank_rules(text, words):
    assert tokenize(text) == words


def test_read_words_lower_cases_first():
    assert read_words("Mr. Fox went to St. Peter.") == ["mr.", "fox", "went", "to", "st.", "peter", "."]
    assert {"mr", "st"} <= BOOK_ABBREVIATIONS


def test_a_saved_dictionary_is_used_as_it_is(grimm_dir):
    saved = ["UNK", "the", ","]
    corpus = load_words(grimm_dir, 2, reverse_dictionary=saved)
    assert corpus.reverse_dictionary == saved
    assert set(corpus.data_list[0].tolist()) <= {0, 1, 2}
    assert corpus.decode([1, 2, 0]) == "the , UNK"


def test_a_missing_story_is_one_line(tmp_path):
    with pytest.raises(UserError, match="001.txt"):
        load_words(tmp_path, 1)
