"""What the word recipes share (book-words, book-words-deep: chapter 8's `lstm_word2vec.ipynb` and
`lstm_word2vec_rnn_api.ipynb`): their typed configs, the word vectors they start from, the notebooks' loop with a
checkpoint after every step, generation, and the comparison with the curve the book printed.

The loop, as both notebooks have it: the stories read as words (words.load_words); the first `valid_docs`
documents longer than `long_doc_words` words lend their last `steps_per_document` words to validation; each
step trains `steps_per_document` iterations on each of `docs_per_step` documents drawn at random (or, with
`--doc-order book`, those the book's printed run drew), then measures the valid perplexity over the first half
of each held-out piece (the bigram notebooks' `steps_per_document // 2`, kept), halves the learning rate after
`decay_threshold` steps without a new best, and writes a beam-search text.

A run folder (rundir.py; classics/common.py opens, checkpoints and resumes it): config.json, vocab.json,
embeddings.json (which vectors the run started from), ckpt/model-<k>.* and ckpt/state-<k>.json (step, loop
state: the numpy generator, the plateau counters, the batch cursors, the metrics rows), best/, metrics.csv
(per step: train and valid perplexity), samples.txt (the text after each step), and at the end
book_comparison.csv and book_comparison.png (the run's curve beside the printed one).
"""
import dataclasses
import hashlib
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from reproduce.beam import beam_generate
from reproduce.book_record import PRINTED_WORD_RUNS, printed_word_steps
from reproduce.classics import common
from reproduce.config import Config, recipe_field
from reproduce.curves import plot_perplexity
from reproduce.download import make_session
from reproduce.errors import UserError
from reproduce.files import write_atomic, write_csv, write_json
from reproduce.progress import eta, format_seconds
from reproduce.sample import draw, pick_sampler
from reproduce.session import plain_rows, rng_state, set_rng_state
from reproduce.train import Plateau, replay_printed_documents, split_documents, validate
from reproduce.word2vec import (BOOK_EMBEDDINGS_SHA256, BOOK_EMBEDDINGS_URL, BOOK_PROBE_WORDS, CBOWConfig,
                                download_book_embeddings, load_book_embeddings, nearest_neighbours, train_cbow)
from reproduce.words import load_words, read_words, untied_ids

tf1 = tf.compat.v1

BEAM_NEIGHBORS = 5                           # both notebooks' beams
BOOK_EMBEDDINGS_FILE = "embeddings.npy"      # where `--embeddings book` reads (and --download writes) the file
PROBE_NEIGHBOURS = 5                         # neighbours of each of the book's probe words in embeddings.json
METRICS = ["step", "train_perplexity", "valid_perplexity", "learning_rate", "learning_rate_reduced", "average_loss",
           "seconds", "documents"]


def option(default, **metadata):
    return dataclasses.field(default=default, metadata=metadata)


EMBEDDINGS_HELP = ("book-words*: book (default): the book's embeddings.npy (./embeddings.npy, fetched from the "
                   "book's repository when absent, SHA-256 checked); cbow: our CBOW vectors, learnt from the stories first; or a .npy "
                   "file of one row per word of this vocabulary")


@dataclasses.dataclass
class WordsConfig(Config):
    """`book-words`: `lstm_word2vec.ipynb`'s LSTM with explicit variables over 128-d word vectors. The bigram
    recipes' Config (the notebook's hyperparameters and loop constants are theirs) with word vectors and the word
    notebooks' beam search."""
    recipe: str = recipe_field("book-words")
    graph: str = recipe_field("fast")                  # the word vectors feed the fast graph's gates
    chars_in_segment: int = recipe_field(500)          # not read: --sample-words
    keep_last: int = recipe_field(3)                   # the classics' checkpoint rule (classics/common.py)
    embeddings: str = option("book", help=EMBEDDINGS_HELP)
    embedding_size: int = option(128, help="book-words*: the width of --embeddings cbow's vectors (default 128; "
                                           "a file's own width otherwise)")
    cbow_passes: int = option(10, help="book-words*: --embeddings cbow: passes over the stories (default 10)")
    cbow_steps_per_doc: int = option(100, help="book-words*: --embeddings cbow: batches per document and pass "
                                               "(default 100)")
    # Notebook quirk, kept: validation documents are those longer than (num_steps + 1) x steps_per_document
    # words, computed from its 26 steps: 2,700.
    long_doc_words: int = recipe_field(2700)
    # Beam text after each step: `sample_segments` segments of `sample_words` words (250 // 20 x 20), each from a
    # word drawn anywhere in a random document (`start_window` 0), in segments of `beam_length` words.
    sample_segments: int = recipe_field(2)
    sample_words: int = option(240, help="book-words*: words of each text written after a step (default: the "
                                         "notebook's, 240 for book-words, 500 for book-words-deep)")
    beam_length: int = recipe_field(20)
    beam_final: str = recipe_field("best")          # the notebook keeps the most probable beam
    beam_excludes_unk: bool = recipe_field(False)

    printed_run = "lstm"                # book_record.PRINTED_WORD_RUNS

    def model_description(self):
        return f"LSTM, {self.num_nodes} units, word vectors"

    def check(self):
        """--doc-order random or book; with book, no more steps or documents than the printed run has, and every
        file it names read (book_documents)."""
        if self.doc_order not in ("random", "book"):
            raise UserError(f"--doc-order {self.doc_order}: recipe {self.recipe} has random and book", exit_code=2)
        if self.doc_order == "book":
            book_documents(self)

    @classmethod
    def tiny(cls):
        return cls(num_files=12, embeddings="cbow", embedding_size=16, cbow_passes=1, cbow_steps_per_doc=20,
                   num_nodes=16, batch_size=8, num_unrollings=5, num_steps=3, steps_per_document=10,
                   docs_per_step=2, valid_docs=2, sample_words=20)


@dataclasses.dataclass
class DeepWordsConfig(WordsConfig):
    """`book-words-deep`: `lstm_word2vec_rnn_api.ipynb`, three LSTMCells [64, 48, 32] through the RNN API."""
    recipe: str = recipe_field("book-words-deep")
    layer_nodes: str = option("64,48,32", help="book-words-deep: the units of each LSTM layer, bottom first "
                                               "(default 64,48,32)")
    num_nodes: int = recipe_field(128)              # not read: --layer-nodes gives the layers' units
    state_variables: str = recipe_field("reference")  # not read: the RNN API's cells keep no state variables
    batch_size: int = 32
    num_steps: int = 251
    # Notebook quirk, kept: its loop feeds `tf_learning_rate: 0.0005` at every iteration, which overrides the
    # decayed rate; the plateau rule still runs (and prints) but changes nothing. 0: train with the schedule.
    fed_learning_rate: float = option(0.0005, type=float, help="book-words-deep: the rate the notebook's loop "
                                      "feeds over its schedule (default 0.0005; 0: the schedule)")
    long_doc_words: int = recipe_field(1000)
    reset_train_state: bool = recipe_field(False)    # every iteration starts from zeros
    sample_segments: int = recipe_field(1)
    sample_words: int = 500
    start_window: int = recipe_field(100)            # the first word: one of a random document's first 100
    beam_length: int = recipe_field(5)
    beam_final: str = recipe_field("top3")           # one of the 3 best beams, by their probability
    beam_excludes_unk: bool = recipe_field(True)

    printed_run = "deep"

    def model_description(self):
        sizes = layer_sizes(self.layer_nodes)
        return f"{len(sizes)} LSTMCells {sizes}"

    def check(self):
        super().check()
        layer_sizes(self.layer_nodes)

    @classmethod
    def tiny(cls):
        small = WordsConfig.tiny()
        return cls(**{f.name: getattr(small, f.name) for f in WordsConfig.option_fields()}, layer_nodes="16,12,8")


def layer_sizes(text):
    """"64,48,32" -> [64, 48, 32]; a one-line error otherwise."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) <= 0:
        raise UserError(f"--layer-nodes {text!r}: give the units of each layer as positive numbers, e.g. 64,48,32",
                        exit_code=2)
    return sizes


# ---------------------------------------------------------------- word vectors
def fetch_book_embeddings(path=BOOK_EMBEDDINGS_FILE, download=False):
    """`--embeddings book`: the book's embeddings.npy fetched into `path` from the book's repository (SHA-256
    checked, never a partial file) when it is absent, or with `download` when it is not the book's; a one-line
    error otherwise. A run does it before reading the vectors, `study` once before any seed starts."""
    path = Path(path)
    if path.is_file() and not download:
        return
    try:
        with make_session() as session:
            download_book_embeddings(path, url=BOOK_EMBEDDINGS_URL, session=session)
    except UserError as e:
        reason = str(e).split("; check the network")[0]
        raise UserError(f"{reason}; fetching the book's embeddings.npy into {path} failed: check the network, "
                        "or give --embeddings the path of a copy, or --embeddings cbow", exit_code=2) from e


def embeddings_of(config, corpus, download=False, log=print):
    """(the [V, E] float32 vectors the run starts from, what they are: a dict for embeddings.json, with the
    book's probe words' neighbours under them, `probe_neighbours`)."""
    vectors, described = starting_vectors(config, corpus, download, log)
    # Searched among the ids every tie order gives the same word, so that runs from the book's file (rows in
    # its own dictionary's order) and from ours name the same words.
    untied = untied_ids(corpus.counter, corpus.reverse_dictionary)
    described["probe_neighbours"] = nearest_neighbours(vectors, corpus.reverse_dictionary, BOOK_PROBE_WORDS,
                                                       top_k=PROBE_NEIGHBOURS, rows=untied)
    described["probe_neighbours_among"] = (f"the {len(untied)} ids whose count no other word has (UNK included), "
                                           "the probe words among them")
    return vectors, described


def starting_vectors(config, corpus, download, log):
    """(the vectors `--embeddings` names: ours learnt by CBOW, the book's file or another .npy; what they are)."""
    V = corpus.vocabulary_size
    if config.embeddings == "cbow":
        cbow = CBOWConfig(embedding_size=config.embedding_size, num_steps=config.cbow_passes,
                          steps_per_doc=config.cbow_steps_per_doc, report_every=config.cbow_passes, seed=config.seed)
        log(f"Learning CBOW word vectors first: {cbow.num_steps} passes, {cbow.embedding_size} wide")
        vectors = train_cbow(corpus.data_list, corpus.reverse_dictionary, cbow, log=log).embeddings
        return vectors, {"source": "cbow", "rows": "this run's dictionary", **dataclasses.asdict(cbow)}
    path = Path(BOOK_EMBEDDINGS_FILE if config.embeddings == "book" else config.embeddings)
    if config.embeddings == "book":
        fetch_book_embeddings(path, download)
    try:
        raw = path.read_bytes()
    except OSError as e:
        hint = (f" (add --download to fetch it from {BOOK_EMBEDDINGS_URL})" if config.embeddings == "book" else "")
        raise UserError(f"{path}: cannot read the word vectors ({e.strerror}){hint}; or give --embeddings cbow "
                        "or a .npy file", exit_code=2) from e
    digest = hashlib.sha256(raw).hexdigest()
    if digest == BOOK_EMBEDDINGS_SHA256:
        vectors = load_book_embeddings(path, V)
        # The book's rows follow its own dictionary, whose order inside each block of tied counts is unknown
        # (words.py); both notebooks loaded them by index, the RNN-API one from a file the other notebook built
        # with another tie order. So do we.
        same = len(untied_ids(corpus.counter, corpus.reverse_dictionary))
        note = (f"the book's embeddings.npy, rows loaded by index as the book did; its dictionary orders tied words "
                f"otherwise: {same} of the {V} ids (those whose count no other word has) surely name the same word")
        return vectors, {"source": "book", "path": str(path), "sha256": digest, "note": note}
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a .npy array of word vectors ({e})", exit_code=2) from e
    if vectors.ndim != 2 or vectors.shape[0] != V:
        raise UserError(f"{path}: shape {vectors.shape}; this vocabulary needs one row per word: [{V}, width]",
                        exit_code=2)
    return vectors.astype(np.float32), {"source": "file", "path": str(path), "sha256": digest,
                                        "rows": "loaded by index"}


# ---------------------------------------------------------------- the loop
def book_documents(config):
    """`--doc-order book`: per step, the documents the book's printed run trained on (its first docs_per_step)."""
    return replay_printed_documents([step["documents"] for step in printed_word_steps(config.printed_run)], config,
                                    f"--doc-order book replays {PRINTED_WORD_RUNS[config.printed_run]}'s printed")


def start_word(corpus, config, rng):
    """The notebooks' first word of a text: a random document, then a random word of it (of its first
    `start_window` words, when not 0)."""
    document = corpus.data_list[rng.randint(0, config.num_files)]
    return int(document[rng.randint(0, config.start_window or len(document))])


def beam_text(session, model, beam, corpus, config, rng):
    """The text the notebooks write after a step: a start word, then `sample_words` words of the notebook's beam
    search (beam.beam_segment with its quirks). Returns the ids, the start word first."""
    first = start_word(corpus, config, rng)
    return [first] + beam_generate(session, model, [first], config.sample_words, config.beam_length, beam.size, rng,
                                   final=config.beam_final, book_quirks=True, beam=beam,
                                   exclude=(0,) if config.beam_excludes_unk else ())


class WordRun:
    """One `train` of a word recipe: the run folder, the corpus, the model and the loop's state."""

    def __init__(self, args, config, build, log=print):
        self.log = log
        self.run = run = common.open_run(args, config)
        self.config = c = run.config
        c.check()
        saved = run.vocab()["words"] if run.resumed else None
        self.corpus = load_words(c.stories_dir, c.num_files, reverse_dictionary=saved,
                                 allow_other_corpus=c.allow_other_corpus or run.resumed)
        self.train_gens, self.valid_gens = split_documents(self.corpus, c, c.long_doc_words, "words")
        self.book_order = book_documents(c) if c.doc_order == "book" else None
        vectors = None
        if not run.resumed:
            vectors, described = embeddings_of(c, self.corpus, getattr(args, "download", False), log)
            c.embedding_size = int(vectors.shape[1])
            run.write_files(config=c.to_dict(), vocab={"words": self.corpus.reverse_dictionary})
            write_json(run.path / "embeddings.json", described)
            log(f"Word vectors: {described.get('note') or described['source']}")
        self.vectors = vectors
        self.model = build(c, self.corpus.vocabulary_size)
        self.rng = np.random.RandomState(c.seed)
        self.plateau = Plateau(c.decay_threshold)
        self.rows, self.iteration, self.seconds = [], 0, 0.0

    def load_state(self, state):
        if not state:
            return
        set_rng_state(self.rng, state["rng"])
        self.plateau = Plateau(self.config.decay_threshold, state["decay_count"], state["min_perplexity"])
        for gen, cursor in zip(self.train_gens, state["cursors"]):
            gen.cursor = np.array(cursor, dtype=np.int64)
        self.rows, self.iteration, self.seconds = state["rows"], state["iteration"], state["seconds"]

    def state(self):
        return {"rng": rng_state(self.rng), "decay_count": self.plateau.decay_count,
                "min_perplexity": self.plateau.min_perplexity, "cursors": [g.cursor.tolist() for g in self.train_gens],
                "rows": plain_rows(self.rows), "iteration": self.iteration, "seconds": self.seconds}

    def train(self):
        run, c, m, log = self.run, self.config, self.model, self.log
        if common.finished(run, log):
            return run.path
        with common.session(run, m, log) as (session, state):
            if not run.resumed:
                m.load_embeddings(session, self.vectors)
            self.load_state(state)
            beam = m.beam_graph(BEAM_NEIGHBORS)
            log(f"Training {c.recipe} in {run.path}: steps {run.saved_step + 1}-{c.num_steps}, "
                f"{c.docs_per_step} x {c.steps_per_document} iterations each, vocabulary {self.corpus.vocabulary_size}")
            started, first = time.monotonic(), run.saved_step
            for step in range(run.saved_step, c.num_steps):
                self.train_step(session, beam, step)
                row = self.rows[-1]
                log(f"step {step + 1}/{c.num_steps}  train perplexity {row['train_perplexity']:.2f}  valid "
                    f"perplexity {row['valid_perplexity']:.2f}  {row['seconds']:.1f}s  "
                    + eta(started, step + 1 - first, c.num_steps - first)
                    + ("  (plateau rule: global step + 1)" if row["learning_rate_reduced"] else ""))
            self.finish(session)
        return run.path

    def train_step(self, session, beam, step):
        c, m = self.config, self.model
        step_started = time.monotonic()
        learning_rate = m.current_learning_rate(session)
        doc_ids = self.rng.permutation(c.num_files)[:c.docs_per_step]       # drawn in both orders, as book.py
        if self.book_order:
            doc_ids = self.book_order[step]
        total = 0.0
        for doc_id in doc_ids:
            for _ in range(c.steps_per_document):
                inputs, labels = self.train_gens[doc_id].unroll_ids()
                _, perplexity = session.run([m.optimizer, m.train_perplexity_without_exp],
                                            m.train_feed(inputs, labels, self.iteration))
                total += float(perplexity)
                self.iteration += 1
            if c.reset_train_state:
                session.run(m.reset_train_state)
        average_loss = total / (c.docs_per_step * c.steps_per_document)
        valid_perplexity = validate(session, m, self.valid_gens, c.steps_per_document)
        reduced = self.plateau.update(valid_perplexity)
        if reduced:
            session.run(m.inc_gstep)
        texts = [self.corpus.decode(beam_text(session, m, beam, self.corpus, c, self.rng))
                 for _ in range(c.sample_segments)]
        self.seconds += time.monotonic() - step_started
        self.rows.append({"step": step + 1, "train_perplexity": float(np.exp(average_loss)),
                          "valid_perplexity": valid_perplexity, "learning_rate": learning_rate,
                          "learning_rate_reduced": int(reduced), "average_loss": average_loss,
                          "seconds": round(time.monotonic() - step_started, 3),
                          "documents": " ".join(str(int(d)) for d in doc_ids), "text": "\n".join(texts)})
        self.write_outputs()
        best = self.run.best_info()
        if best is None or valid_perplexity < best["valid_perplexity"]:
            self.run.save_best(session, self.run.saver, step + 1, valid_perplexity)
        common.save(self.run, session, step + 1, self.state())

    def write_outputs(self):
        path = self.run.path
        write_csv(path / "metrics.csv", METRICS, [{k: row[k] for k in METRICS} for row in self.rows])
        write_atomic(path / "samples.txt", "".join(f"step {row['step']}: {row['text']}\n\n" for row in self.rows))

    def finish(self, session):
        """The comparison with the printed run, then the run marked finished."""
        compare_with_book(self.run.path, self.rows, self.config)
        self.run.finish(self.state())
        self.log(f"Trained {len(self.rows)} steps in {format_seconds(self.seconds)}. Run folder: {self.run.path}  "
                 "(metrics.csv, samples.txt, book_comparison.csv/.png, embeddings.json, best/, ckpt/)")


# ---------------------------------------------------------------- the printed run
COMPARISON = ["step", "train_perplexity", "valid_perplexity", "book_train_perplexity", "book_valid_perplexity",
              "same_documents"]


def compare_with_book(path, rows, config):
    """book_comparison.csv (per step: this run's and the book's train and valid perplexity, and whether the
    step trained on the documents the book's did) and book_comparison.png (both curves)."""
    printed = {row["step"]: row for row in printed_word_steps(config.printed_run)}
    table = []
    for row in rows:
        book = printed.get(row["step"], {})
        table.append({"step": row["step"], "train_perplexity": round(row["train_perplexity"], 3),
                      "valid_perplexity": round(row["valid_perplexity"], 3),
                      "book_train_perplexity": book.get("train_perplexity", ""),
                      "book_valid_perplexity": book.get("valid_perplexity", ""),
                      "same_documents": int(book.get("documents") == [int(d) for d in row["documents"].split()])
                      if book else ""})
    write_csv(Path(path) / "book_comparison.csv", COMPARISON, table)
    plot_perplexity(Path(path) / "book_comparison.png",
                    [(PRINTED_WORD_RUNS[config.printed_run], list(printed.values())), (config.recipe, rows)],
                    f"{config.recipe}: perplexity per step, beside the book's printed run", with_train=True)
    return table


# ---------------------------------------------------------------- generate
def prime_ids(prime, dictionary, warn):
    """The ids of a primer's words (read as the stories are); an unknown word becomes UNK, with a warning."""
    words = read_words(prime)
    if not words:
        raise UserError(f"--prime {prime!r} holds no word", exit_code=2)
    unknown = sorted({w for w in words if w not in dictionary})
    if unknown:
        warn(f"warning: {len(unknown)} word(s) of the primer are not in the vocabulary and become UNK: "
             + ", ".join(repr(w) for w in unknown[:10]))
    return [dictionary.get(w, 0) for w in words]


def recipe_commands(build):
    """The `train(args, config)` and `generate(options, run, config)` of a word recipe whose model `build` makes."""
    def train(args, config):
        return WordRun(args, config, build).train()

    def generate(options, run, config):
        return generate_text(options, run, config, build)

    return train, generate


def generate_text(options, run, config, build, warn=lambda message: print(message, file=sys.stderr)):
    """The text `generate` prints: the notebook's beam search (beam-book), a textbook beam search (beam: ranked
    by joint probability, the best beam kept), or top-3 draws, after --prime or a start word drawn as the
    notebook did."""
    words = run.vocab()["words"]
    dictionary = {word: i for i, word in enumerate(words)}
    rng = np.random.RandomState(config.seed if options.seed is None else options.seed)
    length = options.length or config.sample_words
    model = build(config, len(words))
    with common.restored(run, model, options.checkpoint, prefer_best=True) as session:   # as the bigram recipes
        if options.prime:
            primer = prime_ids(options.prime, dictionary, warn)
        else:
            corpus = load_words(config.stories_dir, config.num_files, reverse_dictionary=words,
                                allow_other_corpus=True, warn=lambda message: None)
            primer = [start_word(corpus, config, rng)]
        if options.sampler == "top3":
            one = model.beam_graph(1)
            session.run(one.init)
            for word in primer[:-1]:
                one.step(session, [word])
            ids = draw(lambda current: one.step(session, [current])[0], primer[-1], length,
                       pick_sampler("top3"), rng)
        else:
            quirks = options.sampler == "beam-book"
            beam = model.beam_graph(min(options.beam_neighbors, len(words)))
            ids = beam_generate(session, model, primer, length, options.beam_length, beam.size, rng,
                                final=config.beam_final if quirks else "best", book_quirks=quirks,
                                no_repeat_ngram=options.no_repeat_ngram, beam=beam,
                                exclude=(0,) if config.beam_excludes_unk else ())
    return " ".join(words[i] for i in primer + ids)


# ---------------------------------------------------------------- evaluate
class SessionSteps:
    """A word model's single step in a session, with numpy_steps.NumpyModel's interface (num_nodes, zero_states,
    step, probabilities): what evaluate.story_losses steps through the stories, a story per row, state carried."""

    def __init__(self, session, model):
        self.session = session
        self.ids, self.states_in, self.output, self.states_out = model.single_step()
        self.num_nodes = int(self.output.shape[1])
        with model.graph.as_default():
            self.rows = tf1.placeholder(tf.float32, [None, self.num_nodes])
            self.predictions = tf.nn.softmax(tf.matmul(self.rows, model.w) + model.b)

    def zero_states(self, rows):
        return tuple(np.zeros([rows, int(p.shape[1])], np.float32) for p in self.states_in)

    def step(self, ids, states):
        output, states = self.session.run([self.output, self.states_out],
                                          {self.ids: ids, **dict(zip(self.states_in, states))})
        return output, tuple(states)

    def probabilities(self, outputs):
        return self.session.run(self.predictions, {self.rows: outputs})
