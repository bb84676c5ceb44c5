"""One config object for a run: the book's constants, the recipes, and the JSON stored beside checkpoints."""
import dataclasses
import json
from pathlib import Path

from reproduce.errors import UserError


@dataclasses.dataclass
class Config:
    recipe: str = "book"
    cell: str = "lstm"                  # lstm | peephole | gru
    graph: str = "fast"                 # fast (row look-ups) | faithful (the book's one-hot products)
    # Data (spec §1): the first `num_files` Grimm stories.
    stories_dir: str = "stories"
    num_files: int = 100
    allow_other_corpus: bool = False    # train on stories that differ from the book's files (data.check_corpus)
    # Hyperparameters (spec §3).
    num_nodes: int = 128
    batch_size: int = 64
    num_unrollings: int = 50
    dropout: float = 0.2
    # Loop constants (loop.md).
    num_steps: int = 26
    steps_per_document: int = 100
    docs_per_step: int = 10
    valid_docs: int = 10                # long_doc_ids: the first 10 documents with > 10 * steps_per_document bigrams
    decay_threshold: int = 5
    chars_in_segment: int = 500
    reset_train_state: bool = True      # article: reset after each document; main notebook: commented out
    save_dropped_output: bool = True    # article quirk: the saved train output is the one after dropout
    test_reset_stddev: float = 0.05     # reset_test_state draws noise (0.01 in the extensions notebook)
    start_window: int = 0               # generation starts at a random bigram of a random document
                                        # (0: anywhere; the extensions notebook: among its first 100)
    # reference: the saved-state variables are TensorFlow 1's reference variables, so the first unrolled
    # step's gradient terms read the state the unroll ends with, as the book's graph computed them
    # (model.py explains the quirk); resource: the textbook gradient, from the state the unroll started with.
    state_variables: str = "reference"
    # random: each step trains on `docs_per_step` documents drawn at random, as the book's loop did;
    # book: the documents the book's printed run drew at each step (golden/book_ch8_document_order.json).
    doc_order: str = "random"
    # Optimiser (spec §4).
    learning_rate: float = 0.001
    decay_rate: float = 0.5
    clip_norm: float = 5.0
    # Checkpoints: the last `keep_last` steps are kept, and the best by valid perplexity.
    keep_last: int = 3
    seed: int = 0

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        # Runs started before `state_variables` existed were trained with resource variables: resumed, they
        # go on with the gradient they started with.
        values.setdefault("state_variables", "resource")
        return cls(**values)

    @classmethod
    def load(cls, path):
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self):
        return dataclasses.asdict(self)


# Recipe name -> the values that differ from the defaults above.
RECIPES = {
    # The article's run: dropout 0.2, train state reset after every document.
    "book": dict(cell="lstm", dropout=0.2, reset_train_state=True),
    # The run whose numbers the book printed (main notebook): dropout 0.0, reset commented out.
    "book-notebook": dict(cell="lstm", dropout=0.0, reset_train_state=False),
    # The extensions notebook (loop.md, "Extensions").
    # The extensions notebook (loop.md, "Extensions"): it saves the output from before dropout, resets
    # the test state with stddev 0.01 and starts generating among a document's first 100 bigrams.
    "book-peephole": dict(cell="peephole", dropout=0.2, reset_train_state=True, save_dropped_output=False,
                          test_reset_stddev=0.01, start_window=100),
    "book-gru": dict(cell="gru", dropout=0.2, reset_train_state=True, save_dropped_output=False,
                     test_reset_stddev=0.01, start_window=100),
}


def recipe_config(name, **overrides):
    """The Config of a recipe, with command-line overrides (None values are ignored)."""
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}", exit_code=2)
    values = dict(RECIPES[name], recipe=name)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Config(**values)
