"""Reading the book's files reproduces what the book printed; the batch generator keeps its semantics."""
import json
import re

import numpy as np
import pytest

from reproduce.data import BatchGenerator, fingerprint, load_corpus


@pytest.fixture(scope="module")
def corpus(grimm_dir):
    return load_corpus(grimm_dir, 100)


@pytest.fixture(scope="module")
def golden(golden_dir):
    return json.loads((golden_dir / "book_ch8_corpus_fingerprint.json").read_text())


def _tie_group_ids(corpus, bigram):
    """The ids our vocabulary gives to every bigram with the same count as `bigram`."""
    count = corpus.counter[bigram]
    return {corpus.dictionary[b] for b in corpus.reverse_dictionary[1:] if corpus.counter[b] == count}


def test_exact_fields_match_the_book(corpus, golden):
    ours = fingerprint(corpus)
    assert ours["total_bigrams"] == golden["total_bigrams"] == 449177
    assert ours["vocabulary_size"] == golden["vocabulary_size"] == 544
    assert ours["most_common"] == golden["most_common"]
    assert ours["documents"] == golden["documents"]        # every count and first 50 bigrams, all 100 files


def test_tie_ordered_fields_match_up_to_the_order_of_equal_counts(corpus, golden):
    # The book's Python 3.5 Counter ordered equal counts by hash (its 15 least common bigrams appear
    # in no document order), so only the count of each printed entry, and the tie group of each
    # printed id, can be reproduced.
    for bigram, count in golden["least_common_tail"]:
        assert corpus.counter[bigram] == count
    assert [n for _, n in corpus.counter.most_common()[-15:]] == [n for _, n in golden["least_common_tail"]]
    for doc, key in ((0, "sample_data_doc0_first10"), (1, "sample_data_doc1_first10")):
        bigrams = golden["documents"][doc]["first_50_bigrams"][:10]
        for bigram, book_id in zip(bigrams, golden[key]):
            assert book_id in _tie_group_ids(corpus, bigram), (bigram, book_id)
    assert fingerprint(corpus)["sample_data_doc0_first10"] == golden["sample_data_doc0_first10"]


def _parse_batch_example(text):
    """The golden file's batches: per unrolled index, inputs and outputs as [(bigram, id)] rows."""
    batches = []
    for block in text.split("Unrolled index")[1:]:
        inputs, outputs = block.split("Output:")
        rows = [re.findall(r"(.{2}) \((\d+)\)", part, flags=re.S) for part in (inputs.split("Inputs:")[1], outputs)]
        batches.append([[(b, int(i)) for b, i in row] for row in rows])
    return batches


def test_batch_example_of_the_book(corpus, golden_dir):
    expected = _parse_batch_example((golden_dir / "book_ch8_batch_example.txt").read_text())
    assert len(expected) == 5
    generator = BatchGenerator(corpus.data_list[0][25:50], 5, 5)
    inputs, labels = generator.unroll_ids()
    for t, (expected_inputs, expected_labels) in enumerate(expected):
        assert [corpus.reverse_dictionary[i] for i in inputs[t]] == [b for b, _ in expected_inputs]
        assert [corpus.reverse_dictionary[i] for i in labels[t]] == [b for b, _ in expected_labels]
        for bigram, book_id in expected_inputs + expected_labels:
            assert book_id in _tie_group_ids(corpus, bigram)


def _book_generator(text, batch_size, num_unroll, calls):
    """A line-by-line transcription of DataGeneratorOHE's cursor rules, as the reference."""
    segments = len(text) // batch_size
    cursor = [b * segments for b in range(batch_size)]
    out = []
    for _ in range(calls):
        step_inputs, step_labels = [], []
        for _ in range(num_unroll):
            row_in, row_label = [], []
            for b in range(batch_size):
                if cursor[b] + 1 >= len(text):
                    cursor[b] = b * segments
                row_in.append(text[cursor[b]])
                row_label.append(text[cursor[b] + 1])
                cursor[b] = (cursor[b] + 1) % len(text)
            step_inputs.append(row_in)
            step_labels.append(row_label)
        out.append((step_inputs, step_labels))
    return out


@pytest.mark.parametrize("length,batch_size,num_unroll", [(25, 5, 5), (101, 7, 9), (1000, 64, 50), (9, 8, 3)])
def test_vectorised_generator_equals_the_book_loop(length, batch_size, num_unroll):
    text = np.random.RandomState(length).randint(0, 50, size=length)
    generator = BatchGenerator(text, batch_size, num_unroll)
    for expected_inputs, expected_labels in _book_generator(list(text), batch_size, num_unroll, calls=7):
        inputs, labels = generator.unroll_ids()
        np.testing.assert_array_equal(inputs, expected_inputs)
        np.testing.assert_array_equal(labels, expected_labels)
    generator.reset_indices()
    np.testing.assert_array_equal(generator.unroll_ids()[0], _book_generator(list(text), batch_size, num_unroll, 1)[0][0])
