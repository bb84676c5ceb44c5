"""How a generated story reads against its training corpus: plain functions on text, no TensorFlow.

Conventions, the same for every text measured (ours and the book's):
- A word is a run of lower-case letters, an inner apostrophe kept ("king's"); punctuation, digits and
  line breaks separate words. `UNK` (the model's unknown bigram, the only upper case in its output)
  separates words and is not one.
- Word n-grams run over the whole text, across punctuation; the corpus's n-grams stay inside a story.
- Character bigrams are overlapping pairs of adjacent characters (so they do not depend on where the
  model's non-overlapping bigrams started); pairs that would straddle an `UNK` are not counted.
"""
import collections
import math
import re

UNK = "UNK"
WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")

# Measure name -> what the report calls it. `text_measures` returns these keys.
MEASURES = {
    "corpus_words": "share of words that are corpus words",
    "copied_3grams": "share of word 3-grams copied from the corpus",
    "copied_5grams": "share of word 5-grams copied from the corpus",
    "repeated_4grams": "share of word 4-grams repeating an earlier one",
    "distinct_2": "distinct-2 (distinct word bigrams / word bigrams)",
    "unk_rate": "UNK rate (UNK / model bigrams)",
    "char_bigram_jsd": "Jensen-Shannon divergence of character bigrams from the corpus (bits)",
}

# Measure name -> (a figure's title for it, its axis: the quantity and its unit). The names stay in JSON.
MEASURE_AXES = {
    "corpus_words": ("Words found in the corpus", "share of the story's words (0-1)"),
    "copied_3grams": ("Word 3-grams copied from the corpus", "share of the story's word 3-grams (0-1)"),
    "copied_5grams": ("Word 5-grams copied from the corpus", "share of the story's word 5-grams (0-1)"),
    "repeated_4grams": ("Word 4-grams repeating an earlier one", "share of the story's word 4-grams (0-1)"),
    "distinct_2": ("Distinct word bigrams (distinct-2)", "distinct / all word bigrams (0-1)"),
    "unk_rate": ("Unknown bigrams (UNK)", "share of the model's bigrams (0-1)"),
    "char_bigram_jsd": ("Character bigrams: distance from the corpus", "Jensen-Shannon divergence (bits, 0-1)"),
}


def join_layout_lines(text):
    """A printed excerpt as one line: each line break (the article's layout) becomes one space.

    Spaces inside a line are kept as printed (the stories have double spaces after sentences).
    """
    return re.sub(r"[ \t]*\n[ \t]*", " ", text.strip())


def words(text):
    return WORD.findall(text.replace(UNK, " ").lower())


def ngrams(tokens, n):
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def _share(part, whole):
    return part / whole if whole else None


def corpus_word_share(text_words, corpus_words):
    """Share of the text's words (every occurrence) that occur in the corpus."""
    return _share(sum(w in corpus_words for w in text_words), len(text_words))


def copied_ngram_share(text_words, corpus_ngrams, n):
    """Share of the text's word n-grams (every occurrence) found verbatim in the corpus."""
    grams = ngrams(text_words, n)
    return _share(sum(g in corpus_ngrams for g in grams), len(grams))


def repeated_ngram_share(text_words, n=4):
    """Share of the text's word n-grams that repeat one seen earlier in the text: 1 - distinct / all."""
    grams = ngrams(text_words, n)
    return _share(len(grams) - len(set(grams)), len(grams))


def distinct_n(text_words, n=2):
    """Distinct word n-grams / all word n-grams (1.0: no repetition)."""
    grams = ngrams(text_words, n)
    return _share(len(set(grams)), len(grams))


def model_bigrams(text):
    """The text cut back into the model's tokens: `UNK`, or two characters."""
    tokens = []
    i = 0
    while i < len(text):
        if text.startswith(UNK, i):
            tokens.append(UNK)
            i += len(UNK)
        else:
            tokens.append(text[i:i + 2])
            i += 2
    return tokens


def unk_rate(text):
    tokens = model_bigrams(text)
    return _share(tokens.count(UNK), len(tokens))


def char_bigram_counts(text):
    counts = collections.Counter()
    for piece in text.split(UNK):
        counts.update(piece[i:i + 2] for i in range(len(piece) - 1))
    return counts


def jensen_shannon(p_counts, q_counts):
    """Jensen-Shannon divergence in bits (0: same distribution, 1: disjoint) of two count tables."""
    p_total, q_total = sum(p_counts.values()), sum(q_counts.values())
    if not p_total or not q_total:
        return None
    divergence = 0.0
    for key in sorted(set(p_counts) | set(q_counts)):     # one order of the sum in every process (hash seeds)
        p, q = p_counts.get(key, 0) / p_total, q_counts.get(key, 0) / q_total
        m = (p + q) / 2
        if p:
            divergence += p * math.log2(p / m) / 2
        if q:
            divergence += q * math.log2(q / m) / 2
    return divergence


class CorpusIndex:
    """What the measures look up in the training corpus, built once from its story texts."""

    def __init__(self, stories):
        self.words = set()
        self.trigrams = set()
        self.fivegrams = set()
        self.char_bigrams = collections.Counter()
        for story in stories:
            story_words = words(story)
            self.words.update(story_words)
            self.trigrams.update(ngrams(story_words, 3))
            self.fivegrams.update(ngrams(story_words, 5))
            self.char_bigrams.update(char_bigram_counts(story))


def text_measures(text, corpus):
    """Every measure of MEASURES for one text against a CorpusIndex (None where the text is too short)."""
    text_words = words(text)
    return {
        "corpus_words": corpus_word_share(text_words, corpus.words),
        "copied_3grams": copied_ngram_share(text_words, corpus.trigrams, 3),
        "copied_5grams": copied_ngram_share(text_words, corpus.fivegrams, 5),
        "repeated_4grams": repeated_ngram_share(text_words, 4),
        "distinct_2": distinct_n(text_words, 2),
        "unk_rate": unk_rate(text),
        "char_bigram_jsd": jensen_shannon(char_bigram_counts(text), corpus.char_bigrams),
    }
