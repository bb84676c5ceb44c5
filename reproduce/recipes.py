"""The registry of recipes: each one object that builds its model, trains and generates, with the options it
uses and its samplers; the rules every recipe follows.

A recipe's code lives in one module (`reproduce.book` for the book's recipes, one of `reproduce.classics`
for each classic) that gives `build(config, vocabulary_size)` (the model's graph), `train(args)` and
`generate(args, run, config)`; the command line reaches them through `registry()` only.

The book's options are generated from the fields of `config.Config` (a new field gets its option, typed by
the field; `metadata={"choices": ...}` limits a `str`, `metadata={"option": False}` keeps a field that
defines a recipe off the command line). The classics' come from their typed configs (classics/configs.py).
An option the chosen recipe does not use is a usage error naming the option and the recipe, and so is a
generate option the chosen sampler does not use.
"""
import dataclasses
import importlib
import os

from reproduce.argtypes import positive
from reproduce.config import RECIPES as BOOK_RECIPES, Config
from reproduce.errors import UserError
from reproduce.session import THREADS_ENV

# The options of `train` that every recipe reads.
EVERY_RECIPE = {"recipe", "run_dir", "resume", "seed", "num_steps"}
RANDOM_SAMPLERS = ("top3", "temperature", "beam", "beam-book")


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    module: str                        # the module that builds, trains and generates it
    options: frozenset                 # the `train` options (argparse names) it reads
    samplers: tuple                    # the generate samplers it has; the first is its default
    random_start: bool                 # generation without --prime starts from a random place (--seed matters)

    def code(self):
        return importlib.import_module(self.module)

    def tiny_config(self):
        """The configuration of a run of seconds (tests), as `build` takes it."""
        if is_book(self.name):
            from reproduce.config import recipe_config
            return recipe_config(self.name, **tiny_values(self.name))
        from reproduce.classics import configs
        return configs.config_values(self.name, tiny_values(self.name))

    def build(self, config, vocabulary_size):
        """The recipe's model (its graph, in `.graph`) for `config` and a vocabulary of that size."""
        return self.code().build(config, vocabulary_size)

    def train(self, args):
        """A run from the parsed options of `train`; returns its folder."""
        if getattr(args, "threads", None):
            os.environ[THREADS_ENV] = str(args.threads)    # every session of this run (and of its comparison)
        return self.code().train(args)

    def generate(self, args, run):
        """The text generated from `run` (a rundir.RunDir) with the parsed options of `generate`."""
        return self.code().generate(args, run, run.read_config())


def option_type(field):
    """The argparse type of a Config field: its metadata's `type`, else a positive number of its kind."""
    if "type" in field.metadata:
        return field.metadata["type"]
    return positive(field.type) if field.type in (int, float) else field.type


def book_option_fields():
    """The fields of Config that are options of `train` (all but those marked `option: False`)."""
    return [f for f in dataclasses.fields(Config) if f.metadata.get("option", True)]


def recipe_defaults():
    """recipe name -> (its typed config before any option, the option fields of that config)."""
    from reproduce.classics import configs
    from reproduce.config import recipe_config
    defaults = {name: (recipe_config(name), book_option_fields()) for name in BOOK_RECIPES}
    for name in configs.CONFIGS:
        defaults[name] = (configs.default_config(name), configs.option_fields(configs.CONFIGS[name]))
    return defaults


def add_train_arguments(parser):
    """One option per option field of every recipe's typed config, the book's first; default None (the
    recipe's value, or with --resume the run's). Its help: the field's, else each recipe's default."""
    fields, defaults = {}, {}
    for name, (config, option_fields) in recipe_defaults().items():
        for field in option_fields:
            dest = field.metadata.get("dest", field.name)
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


def registry():
    """recipe name -> Recipe, the book's and the classics'."""
    from reproduce.classics import MODULES, RECIPE_RANDOM_START, RECIPE_SAMPLERS, train_options
    book_options = frozenset({f.name for f in book_option_fields()} | {"download"} | EVERY_RECIPE)
    recipes = {name: Recipe(name, "reproduce.book", book_options, ("top3", "greedy", "temperature", "beam",
                                                                   "beam-book"), True)
               for name in BOOK_RECIPES}
    for name, module in MODULES.items():
        recipes[name] = Recipe(name, module, frozenset(train_options(name)) | EVERY_RECIPE, RECIPE_SAMPLERS[name],
                               RECIPE_RANDOM_START[name])
    return recipes


def is_book(name):
    return name in BOOK_RECIPES


def tiny_values(name):
    """{option: value} of recipe `name`'s tiny configuration (Config.tiny, or the classic's config class's
    tiny()) where it differs from the recipe's default: what the tests train with."""
    if is_book(name):
        default, tiny = Config(), Config.tiny()
        return {f.name: getattr(tiny, f.name) for f in book_option_fields()
                if getattr(tiny, f.name) != getattr(default, f.name)}
    from reproduce.classics.configs import tiny_values as classic_tiny_values
    return classic_tiny_values(name)


def tiny_options(name):
    """The command-line options of recipe `name`'s tiny configuration."""
    return [text for key, value in tiny_values(name).items() for text in ("--" + key.replace("_", "-"), str(value))]


def given(args, dests):
    """{dest: value} of the options among `dests` given on the command line (not None, not False)."""
    return {dest: getattr(args, dest) for dest in dests if getattr(args, dest, None) not in (None, False)}


OPTION_SPELLINGS = {"num_unrollings": "--num-unrollings/--unroll"}


def refuse_unused_train_options(args):
    """A usage error (exit 2) naming the first option given that recipe `args.recipe` does not use."""
    recipes = registry()
    recipe = recipes[args.recipe]
    for dest, value in vars(args).items():
        if dest in ("command", "debug") or dest in recipe.options or value in (None, False):
            continue
        users = [name for name, r in recipes.items() if dest in r.options]
        option = OPTION_SPELLINGS.get(dest, "--" + dest.replace("_", "-"))
        raise UserError(f"{option} is not used by recipe {recipe.name}; leave it out "
                        f"(it is an option of {', '.join(users) or 'no recipe'})", exit_code=2)


MAX_GENERATE_LENGTH = 100_000          # generate --length: bigrams (words, characters) of one story


def check_generate_options(args, recipe_name):
    """The sampler `args.sampler` (default: the recipe's) must be one of the recipe's, and every generate
    option given must be one the recipe and the sampler use; sets the defaults it resolves on `args`."""
    from reproduce.sample import SAMPLERS
    recipe = registry()[recipe_name]
    sampler = args.sampler or recipe.samplers[0]
    if sampler not in SAMPLERS:
        raise UserError(f"unknown sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}", exit_code=2)
    if sampler not in recipe.samplers:
        raise UserError(f"--sampler {sampler} is not a sampler of recipe {recipe_name}: choose one of "
                        f"{', '.join(recipe.samplers)}", exit_code=2)
    if args.temperature is not None and sampler != "temperature":
        raise UserError(f"--temperature is used by --sampler temperature only, not by {sampler} (recipe "
                        f"{recipe_name}); leave it out", exit_code=2)
    for name in ("beam_length", "beam_neighbors"):
        if getattr(args, name) is not None and not sampler.startswith("beam"):
            raise UserError(f"--{name.replace('_', '-')} is used by --sampler beam and beam-book only, not by "
                            f"{sampler}; leave it out", exit_code=2)
    if args.graph is not None and not is_book(recipe_name):
        raise UserError(f"--graph is not used by recipe {recipe_name} (the book's recipes only); leave it out",
                        exit_code=2)
    random = sampler in RANDOM_SAMPLERS or (recipe.random_start and not args.prime)
    if args.seed is not None and not random:
        raise UserError(f"--seed is not used here: recipe {recipe_name} with --sampler {sampler}"
                        f"{' and --prime' if recipe.random_start else ''} draws nothing at random; leave it out",
                        exit_code=2)
    args.sampler = sampler
    if args.temperature is None:
        args.temperature = 1.0
    if not args.temperature > 0:
        raise UserError(f"--temperature must be above 0 (got {args.temperature})", exit_code=2)
    args.beam_length = args.beam_length or 5
    args.beam_neighbors = args.beam_neighbors or 5
    if args.length is not None and args.length > MAX_GENERATE_LENGTH:
        raise UserError(f"--length {args.length} is past the limit of {MAX_GENERATE_LENGTH:,} (a story is drawn in "
                        "memory and printed when it is complete); give a smaller --length", exit_code=2)

