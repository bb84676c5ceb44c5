"""The story measures on small hand-made texts; every expected value is worked out in the comment beside it."""
import math

import pytest

from reproduce import text_metrics as tm

# Corpus: two stories. Words: the cat sat on a mat / a dog ran.
CORPUS = tm.CorpusIndex(["the cat sat on a mat.", "a dog ran"])


def test_words_lower_case_keep_inner_apostrophes_and_split_on_unk():
    assert tm.words("The king's 'son' said:\nrun,UNKaway") == ["the", "king's", "son", "said", "run", "away"]


def test_corpus_word_share_counts_every_occurrence():
    # the, dog, sat: corpus words; bird: not  ->  3 / 4
    assert tm.corpus_word_share(tm.words("the dog sat bird"), CORPUS.words) == 0.75
    assert tm.corpus_word_share([], CORPUS.words) is None


def test_copied_ngram_share():
    text = tm.words("the cat sat on the cat sat")
    # 3-grams: (the cat sat) (cat sat on) (sat on the) (on the cat) (the cat sat): copied 1st, 2nd, 5th -> 3/5
    assert tm.copied_ngram_share(text, CORPUS.trigrams, 3) == pytest.approx(0.6)
    # 5-grams: (the cat sat on the) (cat sat on the cat) (sat on the cat sat): none in the corpus -> 0
    assert tm.copied_ngram_share(text, CORPUS.fivegrams, 5) == 0.0
    # The corpus's n-grams stay inside a story: "mat a dog" spans the two stories.
    assert tm.copied_ngram_share(["mat", "a", "dog"], CORPUS.trigrams, 3) == 0.0


def test_repetition_measures():
    text = tm.words("a b a b a b")
    # 4-grams: abab, baba, abab -> 3, distinct 2 -> repeated 1/3
    assert tm.repeated_ngram_share(text, 4) == pytest.approx(1 / 3)
    # bigrams: ab ba ab ba ab -> 5, distinct 2 -> 0.4
    assert tm.distinct_n(text, 2) == pytest.approx(0.4)
    assert tm.repeated_ngram_share(tm.words("one two three four five"), 4) == 0.0
    assert tm.distinct_n(["alone"], 2) is None


def test_unk_rate_counts_model_bigrams():
    # ab | UNK | cd -> 1 of 3; "UNK" is one token, not one and a half bigrams
    assert tm.model_bigrams("abUNKcd") == ["ab", "UNK", "cd"]
    assert tm.unk_rate("abUNKcd") == pytest.approx(1 / 3)
    assert tm.unk_rate("abcd") == 0.0


def test_char_bigrams_overlap_and_never_straddle_unk():
    assert tm.char_bigram_counts("abc") == {"ab": 1, "bc": 1}
    assert tm.char_bigram_counts("abUNKab") == {"ab": 2}


def test_jensen_shannon_in_bits():
    assert tm.jensen_shannon({"ab": 3}, {"ab": 1}) == 0.0
    assert tm.jensen_shannon({"ab": 1}, {"cd": 5}) == pytest.approx(1.0)
    # P = (1/2, 1/2), Q = (1, 0), M = (3/4, 1/4):
    # JSD = 1/2 [1/2 log2(2/3) + 1/2 log2 2] + 1/2 [log2(4/3)] = 3/2 - 3/4 log2 3
    assert tm.jensen_shannon({"a": 1, "b": 1}, {"a": 4}) == pytest.approx(1.5 - 0.75 * math.log2(3))
    assert tm.jensen_shannon({}, {"a": 1}) is None


def test_join_layout_lines_keeps_spaces_inside_lines():
    assert tm.join_layout_lines("a comb\nwhich\nmade it.  then \n") == "a comb which made it.  then"


def test_text_measures_of_a_corpus_sentence():
    measures = tm.text_measures("the cat sat on a mat", CORPUS)
    assert set(measures) == set(tm.MEASURES)
    assert measures["corpus_words"] == 1.0
    assert measures["copied_3grams"] == 1.0 and measures["copied_5grams"] == 1.0
    assert measures["repeated_4grams"] == 0.0 and measures["distinct_2"] == 1.0
    assert measures["unk_rate"] == 0.0
    # Its character bigrams are the first story's minus the final "t." pair: close to, not equal to, the corpus's.
    assert 0.0 < measures["char_bigram_jsd"] < 0.2
