"""The book's data pipeline (spec §1-2): story files -> bigrams -> vocabulary -> id lists -> batches."""
import collections
import dataclasses
import hashlib
import os
import stat
import sys
from pathlib import Path

import numpy as np

from reproduce.book_record import STORIES_MANIFEST
from reproduce.errors import UserError
from reproduce.files import file_kind

UNK = "UNK"
SITE_STORIES = 209                      # the book's site holds 001.txt ... 209.txt; the book read the first 100
MAX_STORY_BYTES = 4 * 2 ** 20           # the largest of the book's stories is 44 KB: 4 MiB is no story
# SHA-256 of 001.txt ... 100.txt as the book read them, in `sha256sum` format (`sha256sum -c` checks a folder).
CORPUS_MANIFEST = STORIES_MANIFEST
# The same for 101.txt ... 209.txt, the site's stories the book never read (the site's files are fixed).
UNSEEN_MANIFEST = STORIES_MANIFEST.with_name("site_stories_101_209_sha256sums.txt")
OTHER_CORPUS_FLAG = "--allow-other-corpus"


def story_name(number):
    """`7` -> `007.txt`: the site's name for its story number `number`."""
    return f"{number:03d}.txt"


def story_filenames(num_files):
    """`001.txt` ... : the names the book downloads and reads, in file order."""
    return [story_name(i) for i in range(1, num_files + 1)]


def stories_folder(stories_dir):
    """`stories_dir` as a Path; an empty name is refused rather than read as the current folder."""
    if stories_dir is None or not str(stories_dir).strip():
        raise UserError("the stories folder is an empty name (--stories-dir \"\" or an empty GRIMM_STORIES_DIR); "
                        "give a folder, e.g. --stories-dir stories", exit_code=2)
    return Path(stories_dir)



def _not_a_story_file(path, info, max_bytes):
    """Why a file with this `os.stat` result cannot be a story, or None when it can be read."""
    if not stat.S_ISREG(info.st_mode):
        kind = file_kind(info.st_mode)
        through = " (through a symbolic link)" if os.path.islink(path) else ""
        return f"{kind}{through}, not a regular file; replace it with the story file"
    if info.st_size > max_bytes:
        return (f"{info.st_size} bytes, larger than the {max_bytes} a story may have (the book's are under "
                "50 KB); this is not a story: delete it and download again")
    return None


def read_story_bytes(path, max_bytes=MAX_STORY_BYTES):
    """The bytes of one story file; anything that is not a regular file, or is larger than `max_bytes`,
    is refused in one line before a byte is read (a FIFO would block, a device never end)."""
    path = Path(path)
    try:
        refusal = _not_a_story_file(path, os.stat(path), max_bytes)
        if refusal is None:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)   # O_NONBLOCK: a FIFO swapped in cannot block open
            with os.fdopen(fd, "rb") as story:
                refusal = _not_a_story_file(path, os.fstat(story.fileno()), max_bytes)
                raw = b"" if refusal else story.read(max_bytes + 1)
            if len(raw) > max_bytes:                          # it grew after fstat
                refusal = f"larger than the {max_bytes} bytes a story may have; delete it and download again"
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror}); run `python reproduce/main.py download`") from e
    if refusal:
        raise UserError(f"{path}: {refusal}")
    return raw


def story_refusal(raw):
    """Why the reader refuses a story's bytes and what to do, as (reason, advice), or None when it reads them."""
    if not raw.strip():
        return "the file is empty", "delete it and run `python reproduce/main.py download` again"
    nul = raw.find(b"\x00")
    if nul >= 0:
        return f"binary data (a NUL byte at byte offset {nul}), not a story", "delete it and download again"
    bom = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    try:
        raw[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        return (f"not UTF-8 text (byte 0x{raw[bom + e.start]:02x} at byte offset {bom + e.start})",
                "convert it to UTF-8 (e.g. `iconv -f latin1 -t utf-8`) or download it again")
    return None


def decode_story(path, raw):
    """The text of a story file's bytes, as the book read it (`open(f).read().lower()`); see `read_story`."""
    refusal = story_refusal(raw)
    if refusal:
        raise UserError(f"{path}: {refusal[0]}; {refusal[1]}")
    text = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    return text.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n").lower()


def read_story(path):
    """Read one story as the book does (`open(f).read().lower()`), with a documented policy for odd files.

    Policy: the file must be a regular file of at most MAX_STORY_BYTES, in UTF-8 (ASCII is). A UTF-8
    byte-order mark is dropped, and Windows (CRLF) or old Mac (CR) line endings become LF, which is
    what the book's text-mode read gave on Windows. An empty file, a NUL byte (a binary file) or bytes
    that are not UTF-8 (Latin-1, say) are errors naming the file and the byte offset.
    """
    return decode_story(Path(path), read_story_bytes(path))


# ---------------------------------------------------------------- the book's files, by SHA-256
def read_manifest(path):
    """{'001.txt': sha256 hex, ...} of a file in `sha256sum` format."""
    hashes = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            hashes[name.lstrip("*")] = digest
    return hashes


def book_story_hashes():
    """{'001.txt': sha256 hex, ...}: the stories as the book read them (CORPUS_MANIFEST)."""
    return read_manifest(CORPUS_MANIFEST)


def site_story_hashes():
    """{'001.txt': sha256 hex, ..., '209.txt': ...}: every story of the book's site (both manifests)."""
    return {**book_story_hashes(), **read_manifest(UNSEEN_MANIFEST)}


def differs_message(subject, digest, expected, then=None):
    """The one line naming a story (a path or URL) that is not the site's file (for 001-100: the file the book read)."""
    then = then or f"results will not be comparable: download it again, or pass {OTHER_CORPUS_FLAG}"
    unseen = str(subject).rsplit("/", 1)[-1] > story_name(100)      # a path's or a URL's last part
    whose = ("the site's file", "the site's") if unseen else ("the file the book read", "the book's")
    return f"{subject} differs from {whose[0]} (sha256 {digest[:16]}…, {whose[1]} {expected[:16]}…); {then}"


def check_corpus(digests, allow_other_corpus=False, warn=None):
    """Compare {path: sha256} with the book's files; returns the verdict recorded in corpus_fingerprint.json.

    A file that differs is a UserError naming it (and counting the others), unless `allow_other_corpus`:
    then one warning line. Files without a manifest entry (101.txt ...) are not checked.
    """
    book = book_story_hashes()
    checked = {Path(path): digest for path, digest in digests.items() if Path(path).name in book}
    differing = [path for path, digest in checked.items() if digest != book[path.name]]
    verdict = {"manifest": CORPUS_MANIFEST.name, "checked": len(checked), "differing": [p.name for p in differing],
               "not_in_manifest": len(digests) - len(checked), "allowed_other_corpus": bool(allow_other_corpus),
               "verdict": "other" if differing else "book" if checked else "unchecked"}
    if differing:
        first = differing[0]
        more = "" if len(differing) == 1 else (f" ({len(differing) - 1} more differ: "
                                               f"{', '.join(p.name for p in differing[1:4])}{', …' if len(differing) > 4 else ''})")
        if not allow_other_corpus:
            raise UserError(differs_message(first, checked[first], book[first.name]) + more)
        (warn or _warn)("warning: " + differs_message(first, checked[first], book[first.name],
                                                      f"continuing ({OTHER_CORPUS_FLAG})") + more)
    return verdict


def _warn(message):
    print(message, file=sys.stderr)


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
    check: dict = None          # the files against the book's (check_corpus)

    @property
    def vocabulary_size(self):
        return len(self.reverse_dictionary)

    def decode(self, ids):
        return "".join(self.reverse_dictionary[i] for i in ids)


def load_corpus(stories_dir, num_files, reverse_dictionary=None, allow_other_corpus=False, warn=None):
    """Read `001.txt`... of `stories_dir`; build the vocabulary, or use a saved one (from a checkpoint).

    The files are checked against the book's (check_corpus): one that differs is an error naming it,
    unless `allow_other_corpus` (then a warning, through `warn`).
    """
    stories_dir = stories_folder(stories_dir)
    files = [stories_dir / name for name in story_filenames(num_files)]
    missing = [f.name for f in files if not os.path.lexists(f)]
    if missing:
        raise UserError(f"{stories_dir}: {len(missing)} of the {num_files} stories asked for are missing "
                        f"(first: {missing[0]}); run `python reproduce/main.py download --stories-dir {stories_dir} "
                        f"--num-files {num_files}` or ask for fewer with --num-files")
    raws = [read_story_bytes(f) for f in files]
    documents = [to_bigrams(decode_story(f, raw)) for f, raw in zip(files, raws)]
    check = check_corpus({f: hashlib.sha256(raw).hexdigest() for f, raw in zip(files, raws)}, allow_other_corpus, warn)
    dictionary, built_reverse, counter = build_vocabulary(documents)
    if reverse_dictionary is not None:
        reverse_dictionary = list(reverse_dictionary)
        dictionary = {bigram: i for i, bigram in enumerate(reverse_dictionary)}
    else:
        reverse_dictionary = built_reverse
    data_list = [to_ids(document, dictionary) for document in documents]
    return Corpus(files, documents, dictionary, reverse_dictionary, counter, data_list, check)


def same_stories(fingerprint, other):
    """Whether two fingerprints (`fingerprint()`, or a run's corpus_fingerprint.json) describe the same stories:
    every field but the corpus check's verdict, which older runs lack and which names where the files were."""
    return ({k: v for k, v in fingerprint.items() if k != "corpus_check"}
            == {k: v for k, v in other.items() if k != "corpus_check"})


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
        "corpus_check": corpus.check,        # the files against the book's SHA-256 (check_corpus)
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
