"""The recipes, each declared once in RECIPES below: the one table the command line, the main job, `study`,
`bench`, `evaluate` and `compare` ask.

A recipe is its name, a one-line description, its typed config class (a config.RunConfig with `tiny()`) and the
values of the fields that define it, the module that gives its code, its samplers (the first is its default),
whether generating without --prime starts at a random place, and the options of `train` it reads beyond its
config's (--download, --threads, --compare-cells). The module gives:

    build(config, vocabulary_size)   the model (its graph in `.graph`) for a config of the recipe
    train(args, config)              a run from the parsed options of `train` and the recipe's config with the
                                     options given applied (with --resume, the run's own); returns the run folder
    generate(options, run, config)   the text `generate` prints: options a GenerateOptions, run a rundir.RunDir,
                                     config the run's, read back checked

Adding a recipe is one such module plus one entry in RECIPES.

The options of `train` are generated from the option fields of the config classes (a new field gets its
option, typed by the field). The options are checked here, once, at the edge, and trusted after: an option
of `train` the chosen recipe does not use is a usage error naming the option and the recipe, and so is a
generate option the chosen sampler does not use.
"""
import dataclasses
import os

from reproduce import book, words_deep, words_lstm
from reproduce.argtypes import positive
from reproduce.classics import aesop, aesop_context, char_rnn, shakespeare
from reproduce.classics.configs import AesopConfig, AesopContextConfig, CharConfig, ShakespeareConfig
from reproduce.config import Config, option_dest
from reproduce.errors import UserError
from reproduce.session import THREADS_ENV
from reproduce.word_runs import DeepWordsConfig, WordsConfig

# The options of `train` that every recipe reads.
EVERY_RECIPE = frozenset({"recipe", "run_dir", "resume", "seed", "num_steps"})
SAMPLERS = ("top3", "greedy", "temperature", "beam", "beam-book")
BEAM_SAMPLERS = ("beam", "beam-book")
RANDOM_SAMPLERS = ("top3", "temperature") + BEAM_SAMPLERS      # draw from the generator (--seed matters)
MAX_GENERATE_LENGTH = 100_000          # generate --length: bigrams (words, characters) of one story


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One entry of RECIPES: what the recipe is, and its config, model, training and generation."""
    name: str
    description: str
    config_class: type                 # a config.RunConfig dataclass
    module: object                     # gives build, train and generate
    samplers: tuple                    # the generate samplers it has; the first is its default
    random_start: bool                 # generation without --prime starts from a random place (--seed matters)
    values: dict = dataclasses.field(default_factory=dict)     # of the config fields that define the recipe
    extra_options: tuple = ()          # `train` options (argparse names) it reads beyond its config's
    beam_length: int = 5               # generate --beam-length when not given
    story_report: bool = False         # generate --report writes the story's measures as JSON

    @property
    def options(self):
        """The `train` options (argparse names) it reads."""
        return frozenset(option_dest(f) for f in self.config_class.option_fields()) | set(self.extra_options) \
            | EVERY_RECIPE

    @property
    def is_book(self):
        return self.module is book

    def config(self, **values):
        """The recipe's config with `values` (those that are None left out)."""
        given = {name: value for name, value in values.items() if value is not None}
        return self.config_class(**{**self.values, "recipe": self.name, **given})

    def tiny_values(self):
        """{option: value} of the recipe's tiny configuration: where its config class's tiny() differs from the
        class's defaults (the recipe's own values stay). What the tests train with."""
        tiny, default = self.config_class.tiny(), self.config_class()
        return {option_dest(f): getattr(tiny, f.name) for f in self.config_class.option_fields()
                if getattr(tiny, f.name) != getattr(default, f.name)}

    def tiny_config(self):
        """The configuration of a run of seconds (tests), as `build` takes it."""
        return self.config().with_options(self.tiny_values())

    def read_config(self, run):
        """The config of `run` (a rundir.RunDir of this recipe), checked as it is read."""
        return self.config_class.from_dict(run.read_config(), source=run.path / "config.json")

    def build(self, config, vocabulary_size):
        """The recipe's model (its graph, in `.graph`) for `config` and a vocabulary of that size."""
        return self.module.build(config, vocabulary_size)

    def train(self, args):
        """A run from the parsed options of `train` (checked by refuse_unused_train_options); returns its folder."""
        if getattr(args, "threads", None):
            os.environ[THREADS_ENV] = str(args.threads)    # every session of this run (and of its comparison)
        return self.module.train(args, self.config().with_options(vars(args)))

    def generate(self, options, run):
        """The text generated from `run` (a rundir.RunDir) with the GenerateOptions `options`."""
        return self.module.generate(options, run, self.read_config(run))


BOOK_SAMPLERS = SAMPLERS
CHAR_SAMPLERS = ("temperature", "top3", "greedy")
WORD_SAMPLERS = ("greedy", "top3", "temperature")
WORD_BEAM_SAMPLERS = ("beam-book", "beam", "top3")     # beam-book: the word notebooks' own beam search
TEXT_OPTIONS = ("threads", "download")                 # a text file, downloaded with --download when absent

RECIPES = {recipe.name: recipe for recipe in (
    Recipe("book", "the article's bigram LSTM: dropout 0.2, the train state reset after every document",
           Config, book, BOOK_SAMPLERS, True, dict(cell="lstm", dropout=0.2, reset_train_state=True),
           ("download",)),
    Recipe("book-notebook", "the main notebook's run, whose numbers the book printed: no dropout, the reset "
                            "commented out",
           Config, book, BOOK_SAMPLERS, True, dict(cell="lstm", dropout=0.0, reset_train_state=False),
           ("download",)),
    # The extensions notebook (loop.md, "Extensions"): it saves the output from before dropout, resets the
    # test state with stddev 0.01 and starts generating among a document's first 100 bigrams.
    Recipe("book-peephole", "the extensions notebook's peephole LSTM",
           Config, book, BOOK_SAMPLERS, True, dict(cell="peephole", dropout=0.2, reset_train_state=True,
                                                   save_dropped_output=False, test_reset_stddev=0.01,
                                                   start_window=100), ("download",)),
    Recipe("book-gru", "the extensions notebook's GRU",
           Config, book, BOOK_SAMPLERS, True, dict(cell="gru", dropout=0.2, reset_train_state=True,
                                                   save_dropped_output=False, test_reset_stddev=0.01,
                                                   start_window=100), ("download",)),
    Recipe("shakespeare-char", "2-layer character LSTM, float64, state carried from run to run (Tiny Shakespeare)",
           ShakespeareConfig, shakespeare, CHAR_SAMPLERS, False, extra_options=TEXT_OPTIONS),
    *(Recipe(name, description, CharConfig, char_rnn, CHAR_SAMPLERS, True, dict(cell=char_rnn.CELLS[name]),
             TEXT_OPTIONS + ("compare_cells",))
      for name, description in (
          ("char-rnn", "character generator, BasicRNNCell, windows of 200 characters, temperature sampling"),
          ("char-lstm", "the same with BasicLSTMCell"),
          ("char-gru", "the same with GRUCell"))),
    Recipe("aesop-word", "3 word ids in, next word out: a 512-unit LSTM memorising 'Belling the Cat'",
           AesopConfig, aesop, WORD_SAMPLERS, False, extra_options=("threads",), story_report=True),
    Recipe("aesop-context", "our variant of aesop-word: one-hot words, the story's last 40 words as context",
           AesopContextConfig, aesop_context, WORD_SAMPLERS, False, extra_options=("threads",), story_report=True),
    Recipe("book-words-deep", "the RNN-API word notebook: LSTMCells [64, 48, 32] with variational dropout over the "
                              "book's word vectors, 251 steps, beam search of 5 words",
           DeepWordsConfig, words_deep, WORD_BEAM_SAMPLERS, True, extra_options=("threads", "download"),
           beam_length=5),
    Recipe("book-words", "the word2vec notebook: the book's LSTM (128 units, dropout 0.2) over the book's word "
                         "vectors, beam search of 20 words",
           WordsConfig, words_lstm, WORD_BEAM_SAMPLERS, True, extra_options=("threads", "download"),
           beam_length=20),
)}
BOOK_RECIPES = tuple(name for name, recipe in RECIPES.items() if recipe.is_book)
WORD_RECIPES = tuple(name for name, recipe in RECIPES.items() if recipe.module in (words_deep, words_lstm))


def recipe_config(name, **values):
    """The config of recipe `name` with `values` (None values are ignored)."""
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}", exit_code=2)
    return RECIPES[name].config(**values)


def tiny_options(name):
    """The command-line options of recipe `name`'s tiny configuration."""
    return [text for key, value in RECIPES[name].tiny_values().items()
            for text in ("--" + key.replace("_", "-"), str(value))]


# ---------------------------------------------------------------- the book's runs, for their readers
def read_book_config(run, reader="compare", word_runs=False):
    """The config of the book run (with `word_runs`, or word run) in `run` (a rundir.RunDir), checked when read.
    A run of another recipe (a classic) is a one-line error saying what can be done with it instead of `reader`
    (the command reading)."""
    recipe = run.read_config()["recipe"]
    if recipe not in BOOK_RECIPES + (WORD_RECIPES if word_runs else ()):
        kinds = f"a book recipe ({', '.join(BOOK_RECIPES)})" + (f" or a word recipe ({', '.join(WORD_RECIPES)})"
                                                                 if word_runs else "")
        raise UserError(f"{run.path} is a run of {recipe}, not of {kinds}; {reader} reads their runs only (for this "
                        f"one see {run.path}/metrics.csv and samples.txt, or `generate --checkpoint {run.path}`)",
                        exit_code=2)
    return RECIPES[recipe].read_config(run)


def read_book_run(run, reader="compare"):
    """(Config, vocab) of the book run in `run`, each checked when read (read_book_config)."""
    return read_book_config(run, reader), run.vocab({"bigrams": list})


# ---------------------------------------------------------------- train's options
def option_type(field):
    """The argparse type of a config field: its metadata's `type`, else a positive number of its kind."""
    if "type" in field.metadata:
        return field.metadata["type"]
    return positive(field.type) if field.type in (int, float) else field.type


def add_train_arguments(parser):
    """One option per option field of every recipe's typed config, the book's first; default None (the
    recipe's value, or with --resume the run's). Its help: the field's, else each recipe's default."""
    fields, defaults = {}, {}
    for name, recipe in RECIPES.items():
        config = recipe.config()
        for field in recipe.config_class.option_fields():
            dest = option_dest(field)
            fields.setdefault(dest, field)
            defaults.setdefault(dest, {}).setdefault(repr(getattr(config, field.name)), []).append(name)
    for dest, field in fields.items():
        option = "--" + dest.replace("_", "-")
        by_value = "; ".join(f"{', '.join(names)}: {value}" for value, names in defaults[dest].items())
        help_text = field.metadata.get("help") or f"default: {by_value}".replace("%", "%%")
        if field.type is bool:
            parser.add_argument(option, action="store_true", default=None, help=help_text)
        else:
            parser.add_argument(option, type=option_type(field), choices=field.metadata.get("choices"),
                                help=help_text)


OPTION_SPELLINGS = {"num_unrollings": "--num-unrollings/--unroll"}


def refuse_unused_train_options(args):
    """A usage error (exit 2) naming the first option given that recipe `args.recipe` does not use."""
    recipe = RECIPES[args.recipe]
    for dest, value in vars(args).items():
        if dest in ("command", "debug") or dest in recipe.options or value in (None, False):
            continue
        users = [name for name, r in RECIPES.items() if dest in r.options]
        option = OPTION_SPELLINGS.get(dest, "--" + dest.replace("_", "-"))
        raise UserError(f"{option} is not used by recipe {recipe.name}; leave it out "
                        f"(it is an option of {', '.join(users) or 'no recipe'})", exit_code=2)


# ---------------------------------------------------------------- generate's options
@dataclasses.dataclass(frozen=True)
class GenerateOptions:
    """The options of `generate`, checked against the recipe and resolved (check_generate_options)."""
    checkpoint: str                    # a run folder or a checkpoint prefix inside one
    sampler: str
    length: int = None                 # None: the recipe's own (the book: book.STORY_LENGTH)
    seed: int = None                   # None: the run's
    prime: str = None
    temperature: float = 1.0
    beam_length: int = 5
    beam_neighbors: int = 5
    no_repeat_ngram: int = None        # the beam samplers: None, off
    graph: str = None                  # the book's: None, the graph the run trained with
    report: str = None                 # the Aesop recipes: a JSON file for the story's measures


def check_generate_options(args, recipe):
    """The GenerateOptions of the parsed options of `generate` for a run of `recipe` (a Recipe): the sampler
    (default: the recipe's) must be one of the recipe's, and every option given one the recipe and the sampler
    use; a one-line usage error otherwise."""
    sampler = args.sampler or recipe.samplers[0]
    if sampler not in SAMPLERS:
        raise UserError(f"unknown sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}", exit_code=2)
    if sampler not in recipe.samplers:
        raise UserError(f"--sampler {sampler} is not a sampler of recipe {recipe.name}: choose one of "
                        f"{', '.join(recipe.samplers)}", exit_code=2)
    if args.temperature is not None and sampler != "temperature":
        raise UserError(f"--temperature is used by --sampler temperature only, not by {sampler} (recipe "
                        f"{recipe.name}); leave it out", exit_code=2)
    for name in ("beam_length", "beam_neighbors", "no_repeat_ngram"):
        if getattr(args, name) is not None and sampler not in BEAM_SAMPLERS:
            raise UserError(f"--{name.replace('_', '-')} is used by --sampler beam and beam-book only, not by "
                            f"{sampler}; leave it out", exit_code=2)
    if args.graph is not None and not recipe.is_book:
        raise UserError(f"--graph is not used by recipe {recipe.name} (the book's recipes only); leave it out",
                        exit_code=2)
    if args.report is not None and not recipe.story_report:
        story_reporters = ", ".join(name for name, r in RECIPES.items() if r.story_report)
        raise UserError(f"--report is not used by recipe {recipe.name} (only by {story_reporters}); leave it out",
                        exit_code=2)
    random = sampler in RANDOM_SAMPLERS or (recipe.random_start and not args.prime)
    if args.seed is not None and not random:
        raise UserError(f"--seed is not used here: recipe {recipe.name} with --sampler {sampler}"
                        f"{' and --prime' if recipe.random_start else ''} draws nothing at random; leave it out",
                        exit_code=2)
    given = {name: getattr(args, name) for name in ("temperature", "beam_length", "beam_neighbors", "no_repeat_ngram")
             if getattr(args, name) is not None}
    given.setdefault("beam_length", recipe.beam_length)
    options = GenerateOptions(args.checkpoint, sampler, args.length, args.seed, args.prime, graph=args.graph,
                              report=args.report, **given)
    if options.length is not None and options.length <= 0:
        raise UserError(f"--length must be above 0 (got {options.length})", exit_code=2)
    if options.length is not None and options.length > MAX_GENERATE_LENGTH:
        raise UserError(f"--length {options.length} is past the limit of {MAX_GENERATE_LENGTH:,} (a story is drawn "
                        "in memory and printed when it is complete); give a smaller --length", exit_code=2)
    length = options.length or book.STORY_LENGTH
    if sampler in BEAM_SAMPLERS and length < options.beam_length:
        raise UserError(f"--length {length} is shorter than --beam-length {options.beam_length}: the beam samplers "
                        f"draw whole segments of --beam-length bigrams; give --length {options.beam_length} or more",
                        exit_code=2)
    return options
