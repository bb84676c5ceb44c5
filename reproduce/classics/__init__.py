"""The neighbouring classics: three LSTM text generators of the book's years, as recipes of the same CLI
(their entries in recipes.RECIPES; their typed configs in configs.py).

    shakespeare-char   2-layer character LSTM on Tiny Shakespeare, state carried between runs (shakespeare.py)
    char-rnn, char-lstm, char-gru   the Keras character generator, its cell a flag (char_rnn.py)
    aesop-word         the 3-word LSTM that memorises an Aesop fable (aesop.py)
    aesop-context      our variant of it: one-hot words, up to 40 of them as context (aesop_context.py)

`python reproduce/main.py train --recipe NAME [options]` writes a run folder; `generate --checkpoint RUN`
samples from it; `train --recipe NAME --resume --run-dir RUN` continues an interrupted run from its last
checkpoint and ends as the run would have, uninterrupted (common.py). Each module says which of its
article's quirks it keeps, and what its checkpoints save beyond the weights.
"""
import json
from pathlib import Path

from reproduce.argtypes import positive, thread_count
from reproduce.errors import UserError


def add_train_arguments(train_parser):
    """The classics' options that are not fields of their configs (those are recipes.add_train_arguments')."""
    group = train_parser.add_argument_group("classic recipes (shakespeare-char, char-rnn/lstm/gru, aesop-*)")
    group.add_argument("--unroll", dest="num_unrollings", type=positive(int), metavar="N",
                       help="shakespeare-char: characters per session.run, the truncated back-propagation length "
                            "(default 1, the article's). Same as --num-unrollings, which is also the window length "
                            "of char-* (200) and the number of input words of aesop-word (3)")
    group.add_argument("--threads", type=thread_count, metavar="N",
                       help="threads of TensorFlow's intra- and inter-op pools (default: $REPRODUCE_THREADS, else "
                            "the book's session set-up); 1 leaves the other cores free")
    group.add_argument("--compare-cells", action="store_true",
                       help="char-*: train the RNN, LSTM and GRU alike in RUN_DIR/char-* and compare their "
                            "validation loss (cell_comparison.csv, cell_comparison.png)")


def refuse_comparison(path):
    """`generate` or `evaluate` pointed at a cell comparison (char_rnn.py): a one-line error naming its runs."""
    comparison = Path(path) / "comparison.json"
    if comparison.is_file():
        runs = json.loads(comparison.read_text()).get("runs", [])
        raise UserError(f"{path} compares {len(runs)} runs; use one of them: "
                        + ", ".join(str(Path(path) / r) for r in runs), exit_code=2)
