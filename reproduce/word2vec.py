"""CBOW word vectors as chapter 8's `word2vec.py` learns them, and the vectors the book's repository ships.

`train_cbow` builds the book's `tf.compat.v1` graph (explicit variables, the mean of the 2 x window
context embeddings, `sampled_softmax_loss` with 32 sampled classes, Adam 0.0005) and runs its schedule:
`num_steps` passes, each over the documents in a random order, `steps_per_doc` batches of 128 from each.
Every `report_every` passes it prints the nearest neighbours of the book's probe words as the book did.
It returns the L2-normalised embeddings, which the book saved as `embeddings.npy`.

`load_book_embeddings` reads the book's `embeddings.npy` and refuses any other file (its SHA-256);
`download_book_embeddings` fetches it from the book's repository as the stories are fetched. Its rows
follow the book's dictionary: the same ids as ours for every word whose count no other word shares,
an unknown order inside each block of tied counts (reproduce/words.py says why).
"""
import dataclasses
import hashlib
import io
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from reproduce.download import fetch, make_session
from reproduce.errors import UserError
from reproduce.files import replace_atomically
from reproduce.session import session_config

tf1 = tf.compat.v1
tf1.disable_eager_execution()

BOOK_EMBEDDINGS_URL = ("https://raw.githubusercontent.com/PacktPublishing/Natural-Language-Processing-with-TensorFlow/"
                       "master/ch8/embeddings.npy")
BOOK_EMBEDDINGS_SHA256 = "8f1c80a7d473df642e2de80450d1d92fb78714065c1558f231be460704d6bd2a"
BOOK_EMBEDDINGS_SHAPE = (1322, 128)
MAX_EMBEDDINGS_BYTES = 2 ** 21          # the book's file is 676,992 bytes

# The 16 words whose neighbours the book's log prints (its frequent half of `valid_examples`, drawn at
# random from ids 0-49 by `random.sample`), named so that any run prints the same list.
BOOK_PROBE_WORDS = ("that", "and", "with", "had", "will", "one", "there", "came", "said", "they", "but", "them",
                    "my", "to", "went", "``")


@dataclasses.dataclass
class CBOWConfig:
    """`word2vec.py`'s hyper-parameters (`define_word2vec_tensorflow`, `run_word2vec`)."""
    embedding_size: int = 128
    batch_size: int = 128
    window_size: int = 3            # context words on each side of the target
    num_sampled: int = 32           # sampled classes of the sampled softmax
    learning_rate: float = 0.0005   # Adam
    num_steps: int = 10             # passes over the documents
    steps_per_doc: int = 100        # batches drawn from a document in each pass
    report_every: int = 5           # passes between nearest-neighbour printouts
    top_k: int = 4                  # neighbours printed per probe word
    seed: int = 0

    @classmethod
    def tiny(cls):
        """A few hundred small batches: seconds, for tests."""
        return cls(embedding_size=16, batch_size=32, num_sampled=8, learning_rate=0.01, num_steps=4,
                   steps_per_doc=50, report_every=2)


class CBOWBatches:
    """The book's `generate_batch_for_word2vec`: one cursor per document (its `data_indices`).

    A batch takes `batch_size` consecutive windows of `2 * window_size + 1` words from the document's
    cursor (wrapping at its end): the centre word is the label, the others the context. Book quirk, kept:
    the cursor then moves on by `batch_size + span` words (it refills its whole buffer for each batch),
    so `span` targets are skipped between two batches of one document.
    """

    def __init__(self, data_list, window_size):
        self.documents = [np.asarray(ids, dtype=np.int32) for ids in data_list]
        self.window_size = window_size
        self.cursors = [0] * len(self.documents)

    def next_batch(self, doc_id, batch_size):
        """(context [batch, 2 * window], labels [batch, 1]) of int32 ids from document `doc_id`."""
        document, span = self.documents[doc_id], 2 * self.window_size + 1
        start = self.cursors[doc_id]
        positions = start + np.arange(batch_size)[:, None] + np.arange(span)[None, :]
        windows = document[positions % len(document)]
        self.cursors[doc_id] = (start + span + batch_size) % len(document)
        return np.delete(windows, self.window_size, axis=1), windows[:, self.window_size:self.window_size + 1]


def book_batch_examples(data_list, reverse_dictionary, batch_size=8):
    """The book's `print_some_batches()` output: 8 windows of document 0 for window sizes 1 and 2.

    Book quirk, kept: it resets a local copy of the cursors, so the second batch starts where the first
    left off (word 11), not at the start of the story.
    """
    batches = CBOWBatches(data_list[:1], window_size=1)
    lines = []
    for window_size in (1, 2):
        batches.window_size = window_size
        context, labels = batches.next_batch(0, batch_size)
        lines += ["", f"with window_size = {window_size}:",
                  f"    batch: {[[reverse_dictionary[i] for i in row] for row in context]}",
                  f"    labels: {[reverse_dictionary[i] for i in labels[:, 0]]}"]
    return lines


class CBOWModel:
    """The book's CBOW graph in `self.graph`, its ops under the book's names."""

    def __init__(self, config, vocabulary_size):
        self.config = c = config
        V, E, B, W = vocabulary_size, c.embedding_size, c.batch_size, c.window_size
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf1.set_random_seed(c.seed)
            self.train_dataset = tf1.placeholder(tf.int32, [B, 2 * W], name="train_dataset")
            self.train_labels = tf1.placeholder(tf.int32, [B, 1], name="train_labels")
            self.embeddings = tf1.Variable(tf1.random_uniform([V, E], -1.0, 1.0, seed=1), name="embeddings")
            self.softmax_weights = tf1.Variable(tf1.truncated_normal([V, E], stddev=0.5 / np.sqrt(E), seed=2),
                                                name="softmax_weights")
            self.softmax_biases = tf1.Variable(tf1.random_uniform([V], 0.0, 0.01, seed=3), name="softmax_biases")
            # The book stacks the 2W looked-up [B, E] embeddings along a third axis and averages it: one look-up
            # of the [B, 2W] ids and a mean over its middle axis is the same number.
            mean_embeddings = tf.reduce_mean(tf.nn.embedding_lookup(self.embeddings, self.train_dataset), axis=1)
            self.loss = tf.reduce_mean(tf1.nn.sampled_softmax_loss(
                weights=self.softmax_weights, biases=self.softmax_biases, labels=self.train_labels,
                inputs=mean_embeddings, num_sampled=c.num_sampled, num_classes=V, seed=4))
            self.optimizer = tf1.train.AdamOptimizer(c.learning_rate).minimize(self.loss)
            norm = tf.sqrt(tf.reduce_sum(tf.square(self.embeddings), 1, keepdims=True))
            self.normalized_embeddings = self.embeddings / norm
            self.init = tf1.global_variables_initializer()


def nearest_neighbours(embeddings, reverse_dictionary, words, top_k=4, rows=None):
    """{word: its `top_k` nearest words by cosine}, for the `words` found in `reverse_dictionary` (and among
    `rows`, the ids searched, when given: every id otherwise).

    As the book: rows are normalised, neighbours sorted by similarity and the first one (the word
    itself) dropped.
    """
    rows = np.arange(len(reverse_dictionary)) if rows is None else np.asarray(rows)
    index = {reverse_dictionary[i]: k for k, i in enumerate(rows)}
    found = [word for word in words if word in index]
    unit = embeddings[rows] / np.linalg.norm(embeddings[rows], axis=1, keepdims=True)
    similarity = unit[[index[word] for word in found]] @ unit.T
    return {word: [reverse_dictionary[rows[j]] for j in (-row).argsort()[1:top_k + 1]]
            for word, row in zip(found, similarity)}


def neighbour_lines(neighbours):
    """`Nearest to said: replied, cried, answered, asked,` per word, as the book printed them."""
    return [f"Nearest to {word}: " + " ".join(f"{close}," for close in close_words)
            for word, close_words in neighbours.items()]


def shared_neighbours(first, second, rows, top_k=10):
    """How alike two embeddings of one dictionary are: the mean fraction of its `top_k` nearest neighbours
    that a row of `rows` has in both, neighbours searched among `rows` only.

    For the book's vectors against ours, `rows` are the ids both dictionaries give the same word
    (`reproduce.words.untied_ids`).
    """
    rows = np.asarray(rows)

    def neighbour_sets(embeddings):
        unit = embeddings[rows] / np.linalg.norm(embeddings[rows], axis=1, keepdims=True)
        similarity = unit @ unit.T
        np.fill_diagonal(similarity, -np.inf)
        return [set(row) for row in np.argsort(-similarity, axis=1)[:, :top_k]]

    return float(np.mean([len(a & b) / top_k for a, b in zip(neighbour_sets(first), neighbour_sets(second))]))


@dataclasses.dataclass
class CBOWResult:
    embeddings: np.ndarray      # [V, E] float32, rows L2-normalised (the book's `embeddings.npy`)
    history: list               # per pass: step, book_average_loss (the book's printed figure), mean_loss
    neighbours: dict            # the probe words' neighbours after the last pass
    seconds: float              # training time, graph building excluded


def train_cbow(data_list, reverse_dictionary, config=None, probe_words=BOOK_PROBE_WORDS, log=print):
    """Learn CBOW vectors from `data_list` (int id arrays per document) as `word2vec.py` does."""
    config = config or CBOWConfig()
    model = CBOWModel(config, len(reverse_dictionary))
    batches = CBOWBatches(data_list, config.window_size)
    order = np.random.RandomState(config.seed)
    history, neighbours = [], {}
    with tf1.Session(graph=model.graph, config=session_config()) as session:
        session.run(model.init)
        log("Initialized")
        started = time.perf_counter()
        for step in range(config.num_steps):
            total = 0.0
            for doc_id in order.permutation(len(data_list)):
                for _ in range(config.steps_per_doc):
                    context, labels = batches.next_batch(doc_id, config.batch_size)
                    _, loss = session.run([model.optimizer, model.loss],
                                          {model.train_dataset: context, model.train_labels: labels})
                    total += float(loss)
            # Book quirk, kept in the printout: the first pass prints the sum of its losses, later passes
            # divide the sum by (last document id drawn) x steps_per_doc; `mean_loss` is the true mean.
            divisor = doc_id * config.steps_per_doc
            book_average = total if step == 0 else (total / divisor if divisor else float("inf"))
            mean_loss = total / (len(data_list) * config.steps_per_doc)
            history.append({"step": step + 1, "book_average_loss": book_average, "mean_loss": mean_loss})
            log("Average loss at step %d: %f" % (step + 1, book_average))
            if (step + 1) % config.report_every == 0 or step + 1 == config.num_steps:
                embeddings = session.run(model.normalized_embeddings)
                neighbours = nearest_neighbours(embeddings, reverse_dictionary, probe_words, config.top_k)
                for line in neighbour_lines(neighbours):
                    log(line)
        seconds = time.perf_counter() - started
        embeddings = session.run(model.normalized_embeddings)
    return CBOWResult(embeddings, history, neighbours, seconds)


def save_embeddings(path, embeddings):
    """`embeddings` as a .npy file at `path`, whole or not at all."""
    try:
        replace_atomically(path, lambda out: np.save(out, np.asarray(embeddings, dtype=np.float32)), "wb")
    except OSError as e:
        raise UserError(f"{path}: cannot write the embeddings ({e.strerror}); nothing was written") from e


def load_book_embeddings(path, vocabulary_size=BOOK_EMBEDDINGS_SHAPE[0]):
    """The book's `embeddings.npy` at `path` as a [1322, 128] float32 array; any other file is refused."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read the book's embeddings ({e.strerror}); download them again") from e
    digest = hashlib.sha256(raw).hexdigest()
    if digest != BOOK_EMBEDDINGS_SHA256:
        raise UserError(f"{path}: not the book's embeddings.npy (sha256 {digest[:16]}…, the book's "
                        f"{BOOK_EMBEDDINGS_SHA256[:16]}…); delete it and download it again")
    embeddings = np.load(io.BytesIO(raw), allow_pickle=False)
    if embeddings.shape[0] != vocabulary_size:
        raise UserError(f"{path}: the book's embeddings have {embeddings.shape[0]} rows, one per word of the book's "
                        f"dictionary; this vocabulary has {vocabulary_size} words (read all 100 stories)")
    return embeddings


def download_book_embeddings(target, url=BOOK_EMBEDDINGS_URL, timeout=(10, 30), retries=3, session=None):
    """Fetch the book's `embeddings.npy` into `target` (unless it is already there) and load it."""
    target = Path(target)
    if not target.is_file() or hashlib.sha256(target.read_bytes()).hexdigest() != BOOK_EMBEDDINGS_SHA256:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"{target.parent}: cannot make the folder ({e.strerror}); choose another place") from e
        fetch(session or make_session(retries), url, target, timeout, retries=retries,
              max_bytes=MAX_EMBEDDINGS_BYTES, expected_sha256=BOOK_EMBEDDINGS_SHA256)
    return load_book_embeddings(target)
