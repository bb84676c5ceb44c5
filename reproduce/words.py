"""The stories read as words, as chapter 8's word notebooks read them (`lstm_word2vec.ipynb`).

The book lower-cases each story and calls `nltk.word_tokenize`: NLTK's pretrained English Punkt model
splits sentences, then the Treebank word tokenizer (with the additions `word_tokenize` made to it in the
NLTK of 2018) splits each sentence into words. The pretrained Punkt model is a download that cannot be
made here and that we do not ship. On lower-cased text it decides a sentence break exactly as an
untrained Punkt does except after a word it knows as an abbreviation, which it keeps whole ("st. peter"
stays one sentence, "st." one token). Six such words end in a period in the 100 stories: `mr`, `mrs`, `st`
and three of the model's US-state abbreviations (`wash`, `ore`, `ill`: "to wash.", "ore.", "ill.").
Untrained Punkt told these six reproduces every story of the book's fingerprint exactly (202,036 words).

Why NLTK (pinned) rather than our own rules: its Treebank tokenizer is some forty ordered regular
expressions; re-typing them would be a copy that drifts, while the pinned package plus the fingerprint
test (tests/test_words.py) fails loudly if a release changes a rule. Only the untrained pieces are used.

Dictionary (`build_vocabulary` of reproduce.data, the book's `build_dataset`): `UNK` = 0, then every word
seen more than 10 times in `Counter.most_common()` order. Ties follow first occurrence in the stories:
what `Counter` gives on Python 3.7 and later. The two notebooks printed different tie orders (sample ids
790 against 776 for "times", least-common lists without a word in common) from the same words: their
Python (3.5, on Windows) iterated a dict in an order set by its per-process random string hash, so
neither order can be reproduced; ours agrees with both on every word that has no tie and places each
tied word inside the same block of ids (tests/test_words.py checks both).
"""
import collections
import functools
import hashlib
import re
from pathlib import Path

import numpy as np

from reproduce.data import (UNK, Corpus, build_vocabulary, check_corpus, decode_story, read_story_bytes,
                            stories_folder, story_filenames)

# Abbreviations of NLTK's pretrained English Punkt model that end a word with a period in the book's stories.
BOOK_ABBREVIATIONS = frozenset({"mr", "mrs", "st", "wash", "ore", "ill"})


@functools.cache
def book_tokenizers():
    """(sentence splitter, word tokenizer) of the book's reading, built on first use: importing NLTK loads
    SciPy (a second per process), which only the word recipes need."""
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
    from nltk.tokenize.treebank import TreebankWordTokenizer

    class WordTokenize2018Treebank(TreebankWordTokenizer):
        """The Treebank tokenizer with the three rules `nltk.word_tokenize` added to it in NLTK 3.2.5 (2018):
        curly and angle quotes split off, and a sentence's final period split off before closing quotes.
        Later releases also split runs of backquotes (the stories' "`bleat" stays one token in the book)."""
        STARTING_QUOTES = [(re.compile("([«“‘])"), r" \1 ")] + TreebankWordTokenizer.STARTING_QUOTES
        ENDING_QUOTES = [(re.compile("([»”’])"), r" \1 ")] + TreebankWordTokenizer.ENDING_QUOTES
        PUNCTUATION = ([(re.compile(r"([^\.])(\.)([\]\)}>\"'»”’ ]*)\s*$"), r"\1 \2 \3 ")]
                       + TreebankWordTokenizer.PUNCTUATION)

    parameters = PunktParameters()
    parameters.abbrev_types = set(BOOK_ABBREVIATIONS)
    return PunktSentenceTokenizer(parameters), WordTokenize2018Treebank()


def tokenize(text):
    """The words of `text` as `nltk.word_tokenize` gave them in 2018 (sentences first, then words)."""
    sentences, words = book_tokenizers()
    return [word for sentence in sentences.tokenize(text) for word in words.tokenize(sentence)]


def read_words(text):
    """The book's `read_data`: lower-case, then tokenize."""
    return tokenize(text.lower())


class WordCorpus(Corpus):
    """A `reproduce.data.Corpus` whose documents are word lists; `decode` joins words with spaces."""

    def decode(self, ids):
        return " ".join(self.reverse_dictionary[i] for i in ids)


def words_corpus(files, documents, reverse_dictionary=None, check=None):
    """The dictionary and id lists of word `documents` (one list of words per file in `files`).

    Given `reverse_dictionary` (id -> word, e.g. saved with a run), it is used instead of a new one.
    """
    dictionary, built_reverse, counter = build_vocabulary(documents)
    if reverse_dictionary is not None:
        built_reverse = list(reverse_dictionary)
        dictionary = {word: i for i, word in enumerate(built_reverse)}
    data_list = [np.array([dictionary.get(word, dictionary[UNK]) for word in document], dtype=np.int32)
                 for document in documents]
    return WordCorpus(list(files), documents, dictionary, built_reverse, counter, data_list, check)


def load_words(stories_dir, num_files, reverse_dictionary=None, allow_other_corpus=False, warn=None):
    """Read `001.txt` ... of `stories_dir` as words; the files are checked against the book's SHA-256
    (`reproduce.data.check_corpus`: a differing file is an error unless `allow_other_corpus`)."""
    folder = stories_folder(stories_dir)
    files = [folder / name for name in story_filenames(num_files)]
    raws = [read_story_bytes(path) for path in files]
    documents = [read_words(decode_story(path, raw)) for path, raw in zip(files, raws)]
    check = check_corpus({path: hashlib.sha256(raw).hexdigest() for path, raw in zip(files, raws)},
                         allow_other_corpus, warn)
    return words_corpus(files, documents, reverse_dictionary, check)


def fingerprint(corpus):
    """What the notebooks printed while reading and indexing the stories (keys of the golden JSON)."""
    frequency_list = corpus.counter.most_common()
    return {
        "documents": [{"file": Path(path).name, "document": i, "tokens": len(words), "first_50": words[:50]}
                      for i, (path, words) in enumerate(zip(corpus.files, corpus.documents))],
        "total_words": sum(len(words) for words in corpus.documents),
        "most_common_5": [list(pair) for pair in frequency_list[:5]],
        "least_common_15": [list(pair) for pair in frequency_list[-15:]],
        "sample_data": [ids[:10].tolist() for ids in corpus.data_list[:2]],
        "vocabulary_size": corpus.vocabulary_size,
    }


def tie_blocks(counter, reverse_dictionary):
    """{count: (first id, last id)}: the block of dictionary ids that words seen `count` times occupy.

    Any tie order of `Counter.most_common()` gives the same blocks; only the order inside one differs.
    """
    blocks = collections.defaultdict(list)
    for index, word in enumerate(reverse_dictionary):
        if word != UNK:
            blocks[counter[word]].append(index)
    return {count: (min(ids), max(ids)) for count, ids in blocks.items()}


def untied_ids(counter, reverse_dictionary):
    """The ids every tie order gives the same word: `UNK` and each word whose count no other word has."""
    return sorted({0} | {first for first, last in tie_blocks(counter, reverse_dictionary).values() if first == last})
