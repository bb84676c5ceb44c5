"""One config object for a run: the book's constants, the recipes, and the JSON stored beside checkpoints."""
import dataclasses

from reproduce.argtypes import probability, seed as seed_type
from reproduce.errors import UserError


def recipe_field(default):
    """A field that defines a recipe (RECIPES below): no option of its own on the command line."""
    return dataclasses.field(default=default, metadata={"option": False})


# Each field is an option of `train` (recipes.add_book_arguments), typed by its annotation (a number: above
# 0) or by metadata["type"]; metadata["choices"] limits a `str`.
@dataclasses.dataclass
class Config:
    recipe: str = recipe_field("book")
    cell: str = recipe_field("lstm")    # lstm | peephole | gru
    graph: str = dataclasses.field(default="fast", metadata={
        "choices": ("fast", "faithful"), "help": "fast: row look-ups (default); faithful: the book's one-hot products"})
    # Data (spec §1): the first `num_files` Grimm stories.
    stories_dir: str = dataclasses.field(default="stories", metadata={
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

    @classmethod
    def from_dict(cls, values, source=None):
        """The Config of a dict (config.json's); a value of the wrong type is a one-line error naming `source`
        and the field. A field the dict lacks keeps its default: run folders written before it existed."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name, value in values.items():
            kind = fields[name].type if name in fields else None
            if kind is None:
                continue
            fits = isinstance(value, bool) if kind is bool else \
                isinstance(value, kind) and not isinstance(value, bool) or (kind is float and type(value) is int)
            if not fits:
                raise UserError(f"{source or 'config'}: field {name!r} is {value!r}, not {kind.__name__}; "
                                "this run folder is damaged")
        values = {k: v for k, v in values.items() if k in fields}
        # Runs started before `state_variables` existed were trained with resource variables: resumed, they
        # go on with the gradient they started with.
        values.setdefault("state_variables", "resource")
        return cls(**values)

    @classmethod
    def load(cls, path):
        from reproduce.rundir import read_json_object
        return cls.from_dict(read_json_object(path), source=path)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def tiny(cls, **values):
        """A configuration that trains in seconds (tests, as the PTB tutorial's TestConfig): 12 stories,
        2 documents x 10 iterations per step, 16 units."""
        return cls(**{**dict(num_files=12, docs_per_step=2, steps_per_document=10, num_nodes=16, batch_size=8,
                             num_unrollings=5, chars_in_segment=40, valid_docs=3), **values})


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


def printed_run(doc_order, cell):
    """Whose documents a --doc-order replays: the book's printed "lstm" or "gru" run, or None (random)."""
    if doc_order == "random":
        return None
    return {"book-lstm": "lstm", "book-gru": "gru"}.get(doc_order, "gru" if cell == "gru" else "lstm")


def recipe_config(name, **overrides):
    """The Config of a recipe, with command-line overrides (None values are ignored)."""
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}", exit_code=2)
    values = dict(RECIPES[name], recipe=name)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Config(**values)


def read_book_run(run):
    """(Config, vocab) of the book run in `run` (a rundir.RunDir), each checked when read. A run of another
    recipe (a classic) is a one-line error saying what can be done with it."""
    return read_book_config(run), run.vocab({"bigrams": list})


def read_book_config(run):
    """The Config of the book run in `run`, checked when read (a study's light seed folder has no vocab.json)."""
    values = run.read_config()
    if values["recipe"] not in RECIPES:
        raise UserError(f"{run.path} is a run of {values['recipe']}, not of a book recipe; compare reads the book's "
                        f"runs only (for this one see {run.path}/metrics.csv and samples.txt, or `generate "
                        f"--checkpoint {run.path}`)", exit_code=2)
    return Config.from_dict(values, source=run.path / "config.json")
