"""What the book printed, as the project reads it: the one module that opens `reproduce/golden/`.

The book's two printed training runs are named by `PRINTED_RUNS`: "lstm" (its main notebook) and "gru"
(its extensions notebook, dropout 0.2). For each run: its per-step curve (`printed_curve`), the documents
each step trained on (`printed_documents`) and the story it printed after each step (`printed_stories`).
The word notebooks' runs are named by `PRINTED_WORD_RUNS`: "deep" (`lstm_word2vec_rnn_api.ipynb`, 197 steps
printed) and "lstm" (`lstm_word2vec.ipynb`, one step printed); `printed_word_steps` reads each step's documents,
losses, perplexities and beam text. Besides them: what the book printed while reading its stories (`corpus_fingerprint`), its batch example
(`batch_example`), the article's sample (`article_sample`) and the SHA-256 manifest of the stories it read
(`STORIES_MANIFEST`); of the Aesop article (the aesop-word classic), its last progress line and its story
(`aesop_printed`). golden/README.md and golden/SOURCE.md say where each file comes from.
"""
import csv
import functools
import io
import json
import re
from pathlib import Path

from reproduce.errors import UserError
from reproduce.text_metrics import join_layout_lines

FOLDER = Path(__file__).resolve().parent / "golden"
STORIES_MANIFEST = FOLDER / "book_ch8_stories_sha256sums.txt"     # `sha256sum` format, read by reproduce.data
PRINTED_RUNS = {"lstm": "book LSTM", "gru": "book GRU"}           # run -> its label in reports and figures
PRINTED_CONFIGS = {"lstm": "dropout 0, the main notebook's run",            # run -> how it was trained
                   "gru": "dropout 0.2, the extensions notebook's run"}
_CURVES = {"lstm": "lstm", "gru": "gru_dropout0.2"}                # run -> its `model` in book_ch8_perplexity.csv
_OUTPUTS = {"lstm": "book_ch8_lstm_training_output.txt", "gru": "book_ch8_gru_training_output.txt"}

# The book prints each story as `print("\t", first_bigram, end="")` and then the drawn bigrams, so a story
# is what follows the tab and one space, up to the closing row of `=`.
_PRINTED_STORY = re.compile(r"Average loss at step (\d+):.*?Valid Perplexity: ([\d.]+)\n.*?"
                            r"New text Segment =+\n\t (.*?)\n={20,}\n", re.S)


@functools.lru_cache(maxsize=None)
def _text(name):
    """A golden file's text (read once); a one-line error naming it when the package lacks it."""
    path = FOLDER / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"{path}: cannot read this golden file ({e.strerror}); the package is incomplete, "
                        "check out reproduce/golden/ again") from e


def _check_run(run):
    if run not in PRINTED_RUNS:
        raise ValueError(f"the book printed no run {run!r}; its runs are {', '.join(PRINTED_RUNS)}")


def printed_curve(run):
    """Run "lstm" or "gru" -> its per-step rows with metrics.csv's keys: step, train_perplexity,
    valid_perplexity, learning_rate_reduced (1 where the book halved the rate after that step)."""
    _check_run(run)
    return [{"step": int(row["step"]), "train_perplexity": float(row["train_perplexity"]),
             "valid_perplexity": float(row["valid_perplexity"]),
             "learning_rate_reduced": int(row["learning_rate_reduced_after"])}
            for row in csv.DictReader(io.StringIO(_text("book_ch8_perplexity.csv"))) if row["model"] == _CURVES[run]]


def printed_documents(run):
    """Run "lstm" or "gru" -> the ids of the 10 documents each of its 26 steps trained on, [[16, 96, ...], ...]."""
    _check_run(run)
    return json.loads(_text("book_ch8_document_order.json"))[run]


def printed_output(run):
    """Run "lstm" or "gru" -> the whole output its training cell printed (documents, perplexities, stories)."""
    _check_run(run)
    return _text(_OUTPUTS[run])


def printed_stories(run):
    """Run "lstm" or "gru" -> [(step, valid perplexity, story)], the story it printed after each step."""
    return [(int(step), float(valid), story) for step, valid, story in _PRINTED_STORY.findall(printed_output(run))]


def corpus_fingerprint():
    """What the book printed while reading its 100 stories (the keys of `reproduce.data.fingerprint`)."""
    return json.loads(_text("book_ch8_corpus_fingerprint.json"))


def batch_example():
    """The batches the book printed for `DataGeneratorOHE(data_list[0][25:50], 5, 5)`, as `bigram (id)` rows
    (the file's title line left out)."""
    return _text("book_ch8_batch_example.txt").split("\n", 1)[1]


# ---------------------------------------------------------------- the Aesop article (aesop-word)
_AESOP_PROGRESS = re.compile(r"^Iter= (\d+), Average Loss= ([\d.]+), Average Accuracy= ([\d.]+)%$", re.M)


def aesop_printed():
    """What "LSTM by Example using Tensorflow" printed of its run: the last progress line of listing 8 ("line";
    "accuracy", its `Average Accuracy` in %) and listing 11's story from "had a general" ("story": its words, the
    primer first)."""
    line = _AESOP_PROGRESS.findall(_text("aesop_word_lstm_log.txt"))[-1]
    return {"line": f"Iter= {line[0]}, Average Loss= {line[1]}, Average Accuracy= {line[2]}%",
            "accuracy": float(line[2]),
            "story": _text("aesop_word_lstm_sample_had_a_general.txt").split()}


def article_sample():
    """The book's LSTM story as the article excerpted it, on one line (its line breaks are the article's layout)."""
    return join_layout_lines(_text("book_ch8_lstm_sample.txt"))


# ---------------------------------------------------------------- the word notebooks
PRINTED_WORD_RUNS = {"deep": "book deep LSTM (RNN API)", "lstm": "book word2vec LSTM"}
# Notebook quirk: the RNN-API notebook's plateau counter (`decay_count`, `min_perplexity`) is module state, set in
# the cell that defines `decay_learning_rate` and never reset by the training cell, which had run before the
# printed run. Its 37 `Reducing learning rate` lines in 197 steps (after steps 3, 8, 13, ...) fit one start only:
# 2 checks without a new best, and a best between 73.46 (step 51's valid perplexity, a new best) and 76.61 (step
# 32's, not one). From 0 and 1e10, as the code reads, the rule fires first after step 30. Its loop feeds a fixed
# learning rate, so the counter changed nothing but those lines.
PRINTED_PLATEAU_START = {"deep": {"decay_count": 2, "min_perplexity": 75.0}}
_WORD_OUTPUTS = {"deep": "book_ch8_rnn_api_training_output.txt", "lstm": "book_ch8_word2vec_output.txt"}
# A step of the RNN-API notebook: `Training (Step: k)`, its documents `(1).(62)...`, the losses and perplexities,
# `Reducing learning rate` when the plateau rule fired, then the beam text between rows of `=`.
_DEEP_STEP = re.compile(r"Training \(Step: \d+\)\n((?:\(\d+\)\.)+)\nAverage loss at step (\d+): ([\d.]+)\n"
                        r"\tPerplexity at step \d+: ([\d.]+)\n\nValid Perplexity: ([\d.]+)\n\n"
                        r"(\t Reducing learning rate\n)?Generated Text after epoch \d+ ... \n=+ New text Segment =+\n"
                        r" (.*?)\n={20,}\n", re.S)
# The word2vec notebook printed `Processing step: k, Using learning rate: ...` before its documents.
_LSTM_STEP = re.compile(r"Processing step: \d+, Using learning rate: [\d.]+\n((?:\(\d+\)\.)+)\n"
                        r"Average loss at step (\d+): ([\d.]+)\n\tPerplexity at step \d+: ([\d.]+)\n\n"
                        r"Valid Perplexity: ([\d.]+)\n\n()Generated Text after epoch \d+ ... \n"
                        r"=+ New text Segment =+\n (.*?)\n={20,}\n", re.S)


@functools.lru_cache(maxsize=None)
def printed_word_steps(run):
    """Word run "deep" or "lstm" -> one dict per printed step, with metrics.csv's keys: step, documents (the ids
    it trained on, in order), average_loss, train_perplexity, valid_perplexity, learning_rate_reduced (1 where
    the plateau rule fired after it) and text (the beam text it printed, its words space-separated)."""
    if run not in PRINTED_WORD_RUNS:
        raise ValueError(f"the book printed no word run {run!r}; its runs are {', '.join(PRINTED_WORD_RUNS)}")
    pattern = _DEEP_STEP if run == "deep" else _LSTM_STEP
    return [{"step": int(step), "documents": [int(d) for d in re.findall(r"\((\d+)\)", documents)],
             "average_loss": float(loss), "train_perplexity": float(train), "valid_perplexity": float(valid),
             "learning_rate_reduced": int(bool(reduced)), "text": " ".join(text.split())}
            for documents, step, loss, train, valid, reduced, text in pattern.findall(_text(_WORD_OUTPUTS[run]))]


# The CBOW cell prints `Nearest to WORD: a, b, c, d,` for each probe word every 5 steps.
_NEIGHBOURS = re.compile(r"^Nearest to (\S+): (.*),$", re.M)


@functools.lru_cache(maxsize=None)
def printed_cbow_neighbours():
    """(the CBOW step of the word2vec notebook's last neighbour printout, {probe word: the 4 nearest words it
    printed}), neighbours searched among every word of the book's dictionary."""
    text = _text(_WORD_OUTPUTS["lstm"]).split("## DataGeneratorSeq")[0]
    last_block = text.rsplit("Average loss at step ", 1)[1]
    step = int(last_block.split(":", 1)[0])
    return step, {word: close.split(", ") for word, close in _NEIGHBOURS.findall(last_block)}
