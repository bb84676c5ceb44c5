"""The typed configuration of each classic recipe: one dataclass per model (a config.RunConfig, read back
checked), its fields the values config.json holds, its option fields the options of `train`
(recipes.add_train_arguments), and `tiny()` the run of seconds the tests train.

A field marked `recipe_field` defines the recipe (no option); `metadata["dest"]` names the option of a field
called otherwise (the sample length is `--chars-in-segment`, as for the book).
"""
import dataclasses
from pathlib import Path

from reproduce.argtypes import seed as seed_type
from reproduce.config import RunConfig, recipe_field

SHAKESPEARE_TEXT = "shakespeare/input.txt"
FABLE = Path(__file__).resolve().parent / "belling_the_cat.txt"


def option(default, **metadata):
    return dataclasses.field(default=default, metadata=metadata)


SEED = dict(type=seed_type)


@dataclasses.dataclass
class ShakespeareConfig(RunConfig):
    recipe: str = recipe_field("shakespeare-char")
    text_file: str = option(SHAKESPEARE_TEXT, help="the classics' text (default: shakespeare/input.txt, downloaded "
                                                   "if absent; aesop-*: the fable shipped with the package)")
    num_nodes: int = 200
    layers: int = 2
    batch_size: int = 500
    num_unrollings: int = 1                  # characters per session.run (the article's 1)
    learning_rate: float = 0.01
    clip_norm: float = recipe_field(5.0)
    forget_bias: float = recipe_field(0.0)
    num_steps: int = None                    # None: one epoch
    display_step: int = None                 # None: 1 % of the epoch
    seed: int = option(0, **SEED)
    sample_length: int = recipe_field(100)
    seed_char: str = recipe_field("A")

    @classmethod
    def tiny(cls):
        return cls(num_steps=30, batch_size=20, num_nodes=16, display_step=10)


@dataclasses.dataclass
class CharConfig(RunConfig):
    recipe: str = recipe_field("char-lstm")
    cell: str = recipe_field("lstm")
    text_file: str = SHAKESPEARE_TEXT
    max_chars: int = 100_000
    num_unrollings: int = 200                # the window length
    window_step: int = recipe_field(3)
    num_nodes: int = 128
    batch_size: int = 256
    learning_rate: float = 0.001
    epochs: float = option(100, help="char-*: epochs over the training windows (default 100, the article's); "
                                    "--num-steps, when given, counts batches instead")
    num_steps: int = None                    # None: `epochs` epochs; given, it counts batches
    display_step: int = None                 # None: an epoch, or a tenth of the run if shorter
    seed: int = option(0, **SEED)
    sample_length: int = option(200, dest="chars_in_segment")
    diversities: list = dataclasses.field(default_factory=lambda: [0.5, 1.2], metadata={"option": False})
    valid_windows: int = recipe_field(1024)
    context_lengths: list = dataclasses.field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64, 128, 200],
                                              metadata={"option": False})

    @classmethod
    def tiny(cls):
        return cls(max_chars=3000, num_unrollings=20, num_nodes=16, batch_size=32, num_steps=20, sample_length=10)


@dataclasses.dataclass
class AesopConfig(RunConfig):
    recipe: str = recipe_field("aesop-word")
    text_file: str = str(FABLE)
    num_nodes: int = 512
    layers: int = 1
    num_unrollings: int = 3                  # input words
    learning_rate: float = 0.001
    num_steps: int = 50000
    display_step: int = 1000
    seed: int = option(0, **SEED)
    sample_length: int = recipe_field(32)

    @classmethod
    def tiny(cls):
        return cls(num_steps=300, num_nodes=32, display_step=100)


@dataclasses.dataclass
class AesopContextConfig(AesopConfig):
    recipe: str = recipe_field("aesop-context")
    num_unrollings: int = 40                 # words of context, at most
    num_steps: int = 2000
    display_step: int = 250

    @classmethod
    def tiny(cls):                           # a run of seconds that still retells the fable
        return cls(num_steps=1000, num_nodes=64, num_unrollings=12, display_step=200, learning_rate=0.003)
