"""The book's data pipeline (spec §1-2): story files -> bigrams -> vocabulary -> id lists -> batches."""
import collections
import dataclasses
from pathlib import Path

import numpy as np

from reproduce.errors import UserError

UNK = "UNK"


def story_filenames(num_files):
    """`001.txt` ... : the names the book downloads and reads, in file order."""
    return [f"{i:03d}.txt" for i in range(1, num_files + 1)]


def read_story(path):
    """Read one story as the book does (`open(f).read().lower()`), with a documented policy for odd files.

    Policy: the file must be UTF-8 text (ASCII is). A UTF-8 byte-order mark is dropped, and Windows
    (CRLF) or old Mac (CR) line endings become LF, which is what the book's text-mode read gave on
    Windows. An empty file, a NUL byte (a binary file) or bytes that are not UTF-8 (Latin-1, say)
    are errors naming the file and the byte offset.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror}); run `python reproduce/main.py download`") from e
    if not raw.strip():
        raise UserError(f"{path}: the file is empty; delete it and run `python reproduce/main.py download` again")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise UserError(f"{path}: binary data (a NUL byte at byte offset {nul}), not a story; "
                        "delete it and download again")
    bom = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    raw = raw[bom:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at byte offset {bom + e.start}); "
                        "convert it to UTF-8 (e.g. `iconv -f latin1 -t utf-8`) or download it again") from e
    return text.replace("\r\n", "\n").replace("\r", "\n").lower()


def to_bigrams(text):
    """Non-overlapping character bigrams.

    Book quirk, kept: the range stops at len(text) - 2, so the last one or two characters of every
    story are dropped.
    """
    return [text[i:i + 2] for i in range(0, len(text) - 2, 2)]


def build_vocabulary(documents):
    """`UNK` = 0, then every bigram seen more than 10 times, in `Counter.most_common()` order.

    The book's prose says "fewer than 10 times"; its code keeps count > 10, which we follow.
    Returns (dictionary, reverse_dictionary, counter).
    """
    counter = collections.Counter(bigram for document in documents for bigram in document)
    dictionary = {UNK: 0}
    for bigram, count in counter.most_common():
        if count > 10:
            dictionary[bigram] = len(dictionary)
    reverse_dictionary = [None] * len(dictionary)
    for bigram, index in dictionary.items():
        reverse_dictionary[index] = bigram
    return dictionary, reverse_dictionary, counter


def to_ids(bigrams, dictionary):
    return np.array([dictionary.get(b, 0) for b in bigrams], dtype=np.int32)


@dataclasses.dataclass
class Corpus:
    files: list                 # paths read, in order
    documents: list             # bigram strings per document
    dictionary: dict            # bigram -> id
    reverse_dictionary: list    # id -> bigram
    counter: collections.Counter
    data_list: list             # np.int32 id array per document

    @property
    def vocabulary_size(self):
        return len(self.reverse_dictionary)

    def decode(self, ids):
        return "".join(self.reverse_dictionary[i] for i in ids)


def load_corpus(stories_dir, num_files, reverse_dictionary=None):
    """Read `001.txt`... of `stories_dir`; build the vocabulary, or use a saved one (from a checkpoint)."""
    stories_dir = Path(stories_dir)
    files = [stories_dir / name for name in story_filenames(num_files)]
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise UserError(f"{stories_dir}: {len(missing)} of the {num_files} stories asked for are missing "
                        f"(first: {missing[0]}); run `python reproduce/main.py download --stories-dir {stories_dir} "
                        f"--num-files {num_files}` or ask for fewer with --num-files")
    documents = [to_bigrams(read_story(f)) for f in files]
    dictionary, built_reverse, counter = build_vocabulary(documents)
    if reverse_dictionary is not None:
        reverse_dictionary = list(reverse_dictionary)
        dictionary = {bigram: i for i, bigram in enumerate(reverse_dictionary)}
    else:
        reverse_dictionary = built_reverse
    data_list = [to_ids(document, dictionary) for document in documents]
    return Corpus(files, documents, dictionary, reverse_dictionary, counter, data_list)


def fingerprint(corpus):
    """What the book printed while reading its files, computed for this corpus (same keys as the golden JSON)."""
    frequency_list = corpus.counter.most_common()
    return {
        "total_bigrams": sum(len(d) for d in corpus.documents),
        "vocabulary_size": corpus.vocabulary_size,
        "most_common": [list(x) for x in frequency_list[:5]],
        "least_common_tail": [list(x) for x in frequency_list[-15:]],
        "sample_data_doc0_first10": corpus.data_list[0][:10].tolist(),
        "sample_data_doc1_first10": corpus.data_list[1][:10].tolist() if len(corpus.data_list) > 1 else [],
        "documents": [
            {"document": i, "file": Path(f).name, "bigrams": len(d), "first_50_bigrams": d[:50]}
            for i, (f, d) in enumerate(zip(corpus.files, corpus.documents))
        ],
    }


class BatchGenerator:
    """The book's `DataGeneratorOHE`, on ids and vectorised over the batch.

    Semantics kept exactly: segment `b` starts at `b * (len(text) // batch_size)`; each `next_batch()`
    first sends a cursor whose `cursor + 1 >= len(text)` back to its segment start, emits
    (text[cursor], text[cursor + 1]) and advances the cursor by one. A cursor therefore walks
    start, start+1, ..., len-2 and wraps to start, so `num_unroll` batches are one closed-form
    index computation instead of a Python loop over batch rows.
    """

    def __init__(self, text, batch_size, num_unroll):
        self.text = np.asarray(text, dtype=np.int32)
        if len(self.text) < batch_size + 1:
            raise UserError(f"a document of {len(self.text)} bigrams cannot feed a batch of {batch_size}: "
                            "lower --batch-size or use longer documents")
        self.batch_size = batch_size
        self.num_unroll = num_unroll
        segments = len(self.text) // batch_size
        self.starts = np.arange(batch_size, dtype=np.int64) * segments
        self.period = (len(self.text) - 1) - self.starts     # positions a cursor visits before wrapping
        self.cursor = self.starts.copy()

    def unroll_ids(self):
        """`num_unroll` consecutive batches as two int32 arrays [num_unroll, batch_size]: inputs, labels."""
        steps = np.arange(self.num_unroll)[:, None]
        positions = self.starts + (self.cursor - self.starts + steps) % self.period
        self.cursor = self.starts + (self.cursor - self.starts + self.num_unroll) % self.period
        return self.text[positions], self.text[positions + 1]

    def reset_indices(self):
        self.cursor = self.starts.copy()


def one_hot(ids, vocabulary_size):
    """[..., V] float32 one-hot rows, the book's input format."""
    return np.eye(vocabulary_size, dtype=np.float32)[ids]
