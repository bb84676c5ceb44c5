"""The typed configuration of a run, as its config.json holds it: `RunConfig`, what every recipe's config
class shares (read back checked, written as a dict, its option fields), and the book's `Config`.

Each field of a config class is an option of `train` (recipes.add_train_arguments), typed by its annotation
(a number: above 0) or by metadata["type"]; metadata["choices"] limits a `str`; `recipe_field` keeps a field
that defines a recipe off the command line; metadata["dest"] names the option of a field called otherwise.
"""
import dataclasses
import os

from reproduce.argtypes import probability, seed as seed_type
from reproduce.errors import UserError
from reproduce.rundir import read_json_object


STORIES_ENV = "GRIMM_STORIES_DIR"


def stories_default():
    """Where the stories are when --stories-dir is not given: $GRIMM_STORIES_DIR, else stories/."""
    return os.environ.get(STORIES_ENV, "stories")


def recipe_field(default):
    """A field that defines a recipe (its entry in recipes.RECIPES): no option of its own on the command line."""
    return dataclasses.field(default=default, metadata={"option": False})


def option_dest(field):
    """The argparse name of a config field's option."""
    return field.metadata.get("dest", field.name)


def fits(value, field):
    """Whether config.json's `value` has the type of `field` (an int for a float; None where the default is None)."""
    kind = field.type
    if value is None:
        return field.default is None
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    return isinstance(value, kind) or (kind is float and type(value) is int)


class RunConfig:
    """The methods every recipe's config dataclass shares."""
    # Fields a config.json may lack, with the value a run whose config.json lacks one was trained with, where it
    # differs from the field's default.
    ABSENT_MEANS = {}

    @classmethod
    def from_dict(cls, values, source=None):
        """The config of a dict (config.json's); a value of the wrong type is a one-line error naming `source`
        and the field. A field the dict lacks keeps its default (or ABSENT_MEANS'); a key that is no field is
        left out."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name, value in values.items():
            if name in fields and not fits(value, fields[name]):
                raise UserError(f"{source or 'config'}: field {name!r} is {value!r}, not "
                                f"{fields[name].type.__name__}; this run folder is damaged")
        return cls(**{**cls.ABSENT_MEANS, **{k: v for k, v in values.items() if k in fields}})

    @classmethod
    def load(cls, path):
        return cls.from_dict(read_json_object(path), source=path)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def option_fields(cls):
        """The fields that are options of `train` (all but the recipe fields)."""
        return [f for f in dataclasses.fields(cls) if f.metadata.get("option", True)]

    def check(self):
        """Refuse, in one line, a value the recipe cannot train with, before any story is read (none here)."""

    def with_options(self, options):
        """A copy with `options` ({option dest: value}) applied, those that are None left out."""
        return dataclasses.replace(self, **{f.name: options[option_dest(f)] for f in self.option_fields()
                                            if options.get(option_dest(f)) is not None})


@dataclasses.dataclass
class Config(RunConfig):
    """The book's recipes (recipes.RECIPES gives each its values of the recipe fields)."""
    recipe: str = recipe_field("book")
    cell: str = recipe_field("lstm")    # lstm | peephole | gru
    graph: str = dataclasses.field(default="fast", metadata={
        "choices": ("fast", "faithful"), "help": "fast: row look-ups (default); faithful: the book's one-hot products"})
    # Data (spec §1): the first `num_files` Grimm stories.
    stories_dir: str = dataclasses.field(default_factory=stories_default, metadata={
        "help": "default: stories (env GRIMM_STORIES_DIR); a resumed run: its own, or the same stories elsewhere"})
    num_files: int = 100
    allow_other_corpus: bool = False    # train on stories that differ from the book's files (data.check_corpus)
    # Hyperparameters (spec §3).
    num_nodes: int = 128
    batch_size: int = 64
    num_unrollings: int = 50
    dropout: float = dataclasses.field(default=0.2, metadata={"type": probability})
    # Loop constants (loop.md).
    num_steps: int = 26
    steps_per_document: int = 100
    docs_per_step: int = 10
    valid_docs: int = 10                # long_doc_ids: the first 10 documents with > 10 * steps_per_document bigrams
    decay_threshold: int = 5
    chars_in_segment: int = 500
    reset_train_state: bool = recipe_field(True)    # article: reset after each document; main notebook: not
    save_dropped_output: bool = recipe_field(True)  # article quirk: the saved train output is the one after dropout
    test_reset_stddev: float = recipe_field(0.05)   # reset_test_state draws noise (0.01 in the extensions notebook)
    start_window: int = recipe_field(0)             # generation starts at a random bigram of a random document
                                                    # (0: anywhere; the extensions notebook: among its first 100)
    # reference: the saved-state variables are TensorFlow 1's reference variables, so the first unrolled
    # step's gradient terms read the state the unroll ends with, as the book's graph computed them
    # (model.py explains the quirk); resource: the textbook gradient, from the state the unroll started with.
    state_variables: str = dataclasses.field(default="reference", metadata={
        "choices": ("reference", "resource"),
        "help": "reference: TensorFlow 1's gradient, the book's (default); resource: the textbook one"})
    # random: each step trains on `docs_per_step` documents drawn at random, as the book's loop did;
    # book: the documents the book's printed run of this model drew at each step (its GRU run for the GRU,
    # its main notebook's LSTM run otherwise; golden/book_ch8_document_order.json); book-lstm, book-gru:
    # those of the named printed run, whatever the model, so that two models can train on the same documents.
    doc_order: str = dataclasses.field(default="random", metadata={
        "choices": ("random", "book", "book-lstm", "book-gru"),
        "help": "random (default); book: the documents the book's printed run of this model drew at each "
                "step; book-lstm, book-gru: those of that printed run, for any model"})
    # Optimiser (spec §4).
    learning_rate: float = 0.001
    decay_rate: float = dataclasses.field(default=0.5, metadata={"type": probability})
    clip_norm: float = 5.0
    # Checkpoints: the last `keep_last` steps are kept, and the best by valid perplexity.
    keep_last: int = 3
    seed: int = dataclasses.field(default=0, metadata={"type": seed_type})

    # A run whose config.json has no `state_variables` was trained with resource variables: resumed, it goes on
    # with the gradient it started with.
    ABSENT_MEANS = {"state_variables": "resource"}

    def model_description(self):
        """The model in a few words, as reports name it beside the recipe: the cell here."""
        return self.cell

    @classmethod
    def tiny(cls, **values):
        """A configuration that trains in seconds (tests, as the PTB tutorial's TestConfig): 12 stories,
        2 documents x 10 iterations per step, 16 units."""
        return cls(**{**dict(num_files=12, docs_per_step=2, steps_per_document=10, num_nodes=16, batch_size=8,
                             num_unrollings=5, chars_in_segment=40, valid_docs=3), **values})


def printed_run(doc_order, cell):
    """Whose documents a --doc-order replays: the book's printed "lstm" or "gru" run, or None (random)."""
    if doc_order == "random":
        return None
    return {"book-lstm": "lstm", "book-gru": "gru"}.get(doc_order, "gru" if cell == "gru" else "lstm")
