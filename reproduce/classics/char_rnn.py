"""`char-rnn`, `char-lstm`, `char-gru`: the character generator of "Text Generation with LSTMs and GRUs"
(../shared/seeds/rnn_lstm_gru_text_generation.txt; its char-gen.py is written in Keras), rebuilt as a
tf.compat.v1 graph whose cell is the recipe's: `BasicRNNCell`, `BasicLSTMCell` or `GRUCell`.

Kept from the article, on purpose:
- only the first 100,000 characters of the text are read (its "we're not using memory efficiently");
- every 3rd position starts a window of 200 characters, one-hot, that predicts the character after it;
- 128 units, the last output into a softmax layer, categorical cross-entropy, RMSProp at 0.001,
  batches of 256 windows shuffled every epoch, 100 epochs;
- after every epoch 200 characters are generated from a random window of the text at the
  "diversities" (temperatures) 0.5 and 1.2; each new character slides the 200-character window on
  and the whole window is run again from a zero state.
Added: validation loss on the characters that follow the first 100,000 (the article had none), so
the three cells can be compared (`--compare-cells`), and a context probe of the weights with the best
validation loss (`context_probe`): how much of that loss depends on the characters more than k back.

Resume (`train --recipe char-* --resume --run-dir RUN`, common.open_run): a checkpoint at every progress line,
written after the epoch's samples when the epoch ends there. Its state file holds, beside the step, the
metrics rows and the seconds trained: the states of the shuffling and the sampling generators, the epoch's
window order, the samples so far, and the lowest validation loss and its step, whose weights are in best/
(best/best.json names them and holds that loss, `valid_loss`). A finished run's last state
file keeps its context probe. `--compare-cells` writes RUN/comparison.json first (the runs, the options
given, `finished`); resumed, it skips the cells that have finished, resumes the one that has not (a cell
stopped before its first checkpoint starts again) and trains the rest.
"""
import copy
import dataclasses
import functools
import shutil
import time
import types
from pathlib import Path

import numpy as np
import tensorflow as tf

from reproduce.classics import common
from reproduce.classics.configs import CharConfig
from reproduce.classics.shakespeare import DEFAULT_TEXT, TEXT_URL
from reproduce.errors import UserError
from reproduce.files import pyplot, save_figure, write_atomic, write_csv, write_json
from reproduce.progress import rate_and_eta
from reproduce.rundir import RunDir, read_json_object, train_command
from reproduce.sample import draw, sample_temperature
from reproduce.session import decode_array, encode_array, plain_rows, rng_state, set_rng_state

tf1 = tf.compat.v1

CELLS = {"char-rnn": "rnn", "char-lstm": "lstm", "char-gru": "gru"}     # each recipe's cell; --compare-cells: all
BEST_FIGURE = "loss"                   # best/ keeps the weights of the lowest validation loss (rundir.RunDir)
METRICS = ["step", "epoch", "train_loss", "valid_loss", "windows_per_second", "seconds"]
CONTEXT_METRICS = ["context", "valid_loss"]


def window_starts(length, maxlen, step):
    """`range(0, len(text) - maxlen, step)`: each start's window is text[s:s+maxlen], its label text[s+maxlen]."""
    return np.arange(0, length - maxlen, step)


def windows(ids, starts, maxlen):
    """[len(starts), maxlen] input ids and [len(starts)] next-character ids."""
    return ids[starts[:, None] + np.arange(maxlen)], ids[starts + maxlen]


def split_text(text, max_chars, log=print):
    """(train, valid): the article's first `max_chars` characters, then the `max_chars // 10` after them.
    A file shorter than that gives its last tenth to validation instead."""
    valid_chars = max(1, max_chars // 10)
    if len(text) >= max_chars + valid_chars:
        return text[:max_chars], text[max_chars:max_chars + valid_chars]
    cut = len(text) * 9 // 10
    log(f"the text has {len(text)} characters (fewer than --max-chars {max_chars} + {valid_chars} for validation): "
        f"training on the first {cut}, validating on the last {len(text) - cut}")
    return text[:cut], text[cut:]


class CharModel:
    def __init__(self, config, vocab_size):
        c = config
        with common.new_graph(self, c.seed):
            self.inputs = tf1.placeholder(tf.int32, [None, None], name="window_ids")      # [batch, time]
            self.targets = tf1.placeholder(tf.int32, [None], name="next_ids")
            cell = {"rnn": tf1.nn.rnn_cell.BasicRNNCell, "lstm": tf1.nn.rnn_cell.BasicLSTMCell,
                    "gru": tf1.nn.rnn_cell.GRUCell}[c.cell](c.num_nodes)
            outputs, _ = tf1.nn.dynamic_rnn(cell, tf.one_hot(self.inputs, vocab_size), dtype=tf.float32)
            dense_w = tf1.get_variable("dense_w", [c.num_nodes, vocab_size])        # Keras Dense: glorot, 0
            dense_b = tf1.get_variable("dense_b", [vocab_size], initializer=tf1.zeros_initializer())
            logits = tf.matmul(outputs[:, -1], dense_w) + dense_b
            self.probabilities = tf.nn.softmax(logits)
            self.loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=self.targets,
                                                                                      logits=logits))
            # Keras's RMSprop: rho 0.9, epsilon 1e-7, and its mean squares start at 0. tf.compat.v1's start
            # at 1, which all but freezes the first hundred steps; `init` sets them to 0 after initialising.
            optimizer = tf1.train.RMSPropOptimizer(c.learning_rate, decay=0.9, epsilon=1e-7)
            self.train_op = optimizer.minimize(self.loss, global_step=tf1.train.get_or_create_global_step())
            with tf.control_dependencies([tf1.global_variables_initializer()]):
                self.init = tf.group(*[optimizer.get_slot(v, "rms").assign(tf.zeros_like(v))
                                       for v in tf1.trainable_variables()])

    def generate(self, session, window, length, sampler, rng, maxlen):
        """The article's loop: run the (at most `maxlen`) last characters, draw one, slide the window on."""
        context = list(window[:-1])

        def step(current):
            context.append(current)
            return session.run(self.probabilities, {self.inputs: [context[-maxlen:]]})[0]

        return draw(step, window[-1], length, sampler, rng)

    def context_probe(self, session, inputs, targets, batch_size, lengths, rng):
        """Validation loss when only the last k characters of each window are its own, for each k of `lengths`:
        the first maxlen - k are those of another validation window (a fixed random pairing). A model that
        uses nothing further back than K characters scores the same for every k >= K."""
        maxlen = inputs.shape[1]
        other = rng.permutation(len(inputs))
        rows = []
        for k in sorted({min(k, maxlen) for k in lengths} | {maxlen}):          # k = maxlen: the window itself
            spliced = inputs.copy()
            spliced[:, :maxlen - k] = inputs[other, :maxlen - k]
            rows.append({"context": k, "valid_loss": self.mean_loss(session, spliced, targets, batch_size)})
        return rows

    def mean_loss(self, session, inputs, targets, batch_size):
        total = 0.0
        for i in range(0, len(targets), batch_size):
            batch = slice(i, i + batch_size)
            total += session.run(self.loss, {self.inputs: inputs[batch], self.targets: targets[batch]}) \
                * len(targets[batch])
        return total / len(targets)


def build(config, vocab_size):
    """The recipe's model for config.json's values (recipes.Recipe.build)."""
    return CharModel(config, vocab_size)


def train(args, config, log=print):
    """One run of `config` (a configs.CharConfig, its cell the recipe's), or with --compare-cells one of each
    cell; returns the run folder."""
    if getattr(args, "compare_cells", False):
        return compare_cells(args, config, log)
    path, _, _ = train_one(args, config, log=log)
    return path


def read_data(config, download, log):
    """The article's windows of the text: training ids and window starts, validation windows, the characters."""
    text = common.read_text(config.text_file, TEXT_URL, download=download or config.text_file == DEFAULT_TEXT,
                            log=log)
    train_text, valid_text = split_text(text, config.max_chars, log)
    maxlen = config.num_unrollings
    if len(train_text) <= maxlen or len(valid_text) <= maxlen:
        raise UserError(f"{config.text_file}: {len(train_text)} training and {len(valid_text)} validation "
                               f"characters cannot fill windows of {maxlen}; lower --num-unrollings or use a longer "
                               "text (or a larger --max-chars)", exit_code=2)
    chars = sorted(set(train_text + valid_text))
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    train_ids = np.array([char_to_ix[ch] for ch in train_text], dtype=np.int32)
    valid_ids = np.array([char_to_ix[ch] for ch in valid_text], dtype=np.int32)
    starts = window_starts(len(train_ids), maxlen, config.window_step)
    valid_starts = window_starts(len(valid_ids), maxlen, config.window_step)
    valid_starts = valid_starts[::max(1, len(valid_starts) // config.valid_windows)]
    log(f"{len(train_text)} training characters ({len(starts)} windows of {maxlen}), {len(valid_text)} validation "
        f"characters ({len(valid_starts)} windows), {len(chars)} distinct characters")
    steps_per_epoch = -(-len(starts) // config.batch_size)             # Keras keeps the last, smaller batch
    return types.SimpleNamespace(chars=chars, train_text=train_text, train_ids=train_ids, starts=starts,
                                 valid=windows(valid_ids, valid_starts, maxlen), steps_per_epoch=steps_per_epoch)


def train_one(args, config, path=None, command=None, log=print):
    """Train, or resume, the run of `config` in --run-dir (or `path`, with `command` resuming the comparison it
    is part of): (run folder, metrics rows, context probe rows)."""
    run = common.open_run(args, config, path, command)
    run.best_figure = BEST_FIGURE
    finished = common.finished(run, log)
    if finished:
        return run.path, finished["rows"], finished["context"]
    config = run.config
    data = read_data(config, args.download, log)
    num_steps = config.num_steps = config.num_steps or round(config.epochs * data.steps_per_epoch)
    # The training text goes with the run: `generate` starts from a random window of it, as the article does.
    common.start(run, {"chars": data.chars, "train_text": data.train_text})
    model = CharModel(config, len(data.chars))
    with common.session(run, model, log) as (session, state):
        if state:
            keep_best_weights(session, run, state)
        log(f"Training {config.recipe} ({config.cell} cell, {config.num_nodes} units) in {run.path}: {num_steps} steps "
            f"of {config.batch_size} windows ({num_steps / data.steps_per_epoch:.2f} epochs)")
        state = train_steps(session, model, run, state, data, log)
        run.restore_for_reading(session, run.saver, tf1.global_variables(), run.best / run.best_info()["checkpoint"],
                             say=False)
        probe_rng = np.random.RandomState(config.seed + 2)
        context = plain_rows(model.context_probe(session, *data.valid, config.batch_size,
                                                        config.context_lengths, probe_rng))
        write_csv(run.path / "context_probe.csv", CONTEXT_METRICS, context)
        run.finish(dict(state, context=context))
    log(f"Context probe of the best weights ({state['best_step']} steps, valid loss {state['best']:.4f}); "
        "validation loss with only the last k characters of each window its own:")
    log("  ".join(f"k={r['context']}: {r['valid_loss']:.4f}" for r in context))
    log(f"Run folder: {run.path}  (config.json, vocab.json, metrics.csv, context_probe.csv, samples.txt, ckpt/, best/)")
    return run.path, state["rows"], context


def keep_best_weights(session, run, state):
    """A resumed run's best/ as its state says. The best weights are saved after the checkpoint of their step,
    so when that step is the one resumed from, they are saved again (from the weights just restored)."""
    if state["best_step"] == run.saved_step:
        run.save_best(session, run.saver, run.saved_step, state["best"])
    best = run.best_info()
    if not best or best["step"] != state["best_step"]:
        raise UserError(f"{run.best}: the best weights (step {state['best_step']}) the checkpoint of "
                               f"step {run.saved_step} names are missing; this run cannot be resumed exactly")


def train_steps(session, model, run, state, data, log):
    """The article's epochs, from the step after `state`'s (a new run: from the first). Every `display` steps a
    progress line (validation loss, metrics.csv), at each epoch's end the samples, then the checkpoint of that
    step, and best/ when the validation loss is the lowest so far. Returns the state of the last checkpoint."""
    c, batch, steps_per_epoch = run.config, run.config.batch_size, data.steps_per_epoch
    display = c.display_step or max(1, min(steps_per_epoch, c.num_steps // 10))
    # Two generators, so that every cell trained with one seed sees the same batches in the same order.
    shuffle_rng, sample_rng = np.random.RandomState(c.seed), np.random.RandomState(c.seed + 1)
    if state:
        set_rng_state(shuffle_rng, state["shuffle_rng"])
        set_rng_state(sample_rng, state["sample_rng"])
    order = decode_array(state["order"]) if state else None
    rows, samples = state.get("rows", []), state.get("samples", [])
    best, best_step = state.get("best", float("inf")), state.get("best_step", 0)
    started, loss_sum, loss_count = time.monotonic() - state.get("seconds", 0.0), 0.0, 0
    for step in range(run.saved_step, c.num_steps):
        position = step % steps_per_epoch
        if position == 0:
            order = shuffle_rng.permutation(len(data.starts))
        inputs, targets = windows(data.train_ids, data.starts[order[position * batch:(position + 1) * batch]],
                                  c.num_unrollings)
        loss, _ = session.run([model.loss, model.train_op], {model.inputs: inputs, model.targets: targets})
        loss_sum, loss_count = loss_sum + loss, loss_count + 1
        progress = (step + 1) % display == 0 or step == c.num_steps - 1
        if progress:
            rows.append(progress_row(session, model, run, data, step, loss_sum / loss_count, started, log))
            write_csv(run.path / "metrics.csv", METRICS, rows)
            loss_sum, loss_count = 0.0, 0
        if position == steps_per_epoch - 1 or step == c.num_steps - 1:          # the article's epoch end
            samples.append(epoch_samples(session, model, c, data.train_ids, data.chars, sample_rng, step + 1))
            log(samples[-1])
            write_atomic(run.path / "samples.txt", "\n".join(samples))
        if progress:
            improved = rows[-1]["valid_loss"] < best
            if improved:
                best, best_step = float(rows[-1]["valid_loss"]), step + 1
            state = {"rows": plain_rows(rows), "samples": samples, "best": best, "best_step": best_step,
                     "seconds": time.monotonic() - started,
                     "shuffle_rng": rng_state(shuffle_rng), "sample_rng": rng_state(sample_rng),
                     "order": encode_array(order)}
            common.save(run, session, step + 1, state)
            if improved:
                run.save_best(session, run.saver, step + 1, best)
    return state


def progress_row(session, model, run, data, step, train_loss, started, log):
    """The progress line after `step`, and its row of metrics.csv (written with the rows before it)."""
    valid_loss = model.mean_loss(session, *data.valid, run.config.batch_size)
    seconds = time.monotonic() - started
    row = {"step": step + 1, "epoch": round((step + 1) / data.steps_per_epoch, 3), "train_loss": train_loss,
           "valid_loss": valid_loss, "windows_per_second": round((step + 1) * run.config.batch_size / seconds, 1),
           "seconds": round(seconds, 2)}
    log(f"step {step + 1}/{run.config.num_steps} (epoch {row['epoch']:.2f})  loss {train_loss:.4f}  "
        f"valid loss {valid_loss:.4f}  "
        + rate_and_eta(started, step + 1, run.config.num_steps, "windows", run.config.batch_size))
    return row


def epoch_samples(session, model, config, train_ids, chars, rng, step):
    maxlen = config.num_unrollings
    start = rng.randint(0, len(train_ids) - maxlen)
    window = train_ids[start:start + maxlen].tolist()
    lines = [f"=== step {step}: generating with seed \"{''.join(chars[i] for i in window)}\""]
    for diversity in config.diversities:
        ids = model.generate(session, window, config.sample_length,
                             functools.partial(sample_temperature, temperature=diversity), rng, maxlen)
        lines.append(f"----- diversity: {diversity}\n" + "".join(chars[i] for i in ids))
    return "\n".join(lines) + "\n"


def compare_cells(args, config, log=print):
    """Train the three cells on the same text, steps and seed (`config`'s); print and plot their validation
    losses. With --resume: skip the cells that have finished, resume the one that has not, then train the rest."""
    folder = comparison_folder(args, log)
    if folder is None:
        return Path(args.run_dir)
    config = config.with_options(vars(args))           # with the options a resumed comparison was started with
    top = folder.path
    command = train_command(args.recipe, top, " --compare-cells")
    histories, contexts = {}, {}
    try:
        for recipe in CELLS:
            log(f"\n===== {recipe} =====")
            cell_config = dataclasses.replace(config, recipe=recipe, cell=CELLS[recipe])
            _, histories[recipe], contexts[recipe] = train_one(cell_args(args, top / recipe, log), cell_config,
                                                               top / recipe, command, log)
    except KeyboardInterrupt:
        raise UserError(f"interrupted; continue the comparison with `{command}`", exit_code=130) from None
    rows = [{"cell": CELLS[r], "step": row["step"], "valid_loss": row["valid_loss"], "train_loss": row["train_loss"],
             "seconds": row["seconds"]} for r, history in histories.items() for row in history]
    write_csv(top / "cell_comparison.csv", ["cell", "step", "valid_loss", "train_loss", "seconds"], rows)
    write_csv(top / "context_probe.csv", ["cell", "context", "valid_loss"],
                     [{"cell": CELLS[r], **row} for r, rows_ in contexts.items() for row in rows_])
    write_json(top / "comparison.json", {"runs": list(CELLS), "options": common.given_options(args, CharConfig),
                                                "finished": True})
    log(f"\nValidation loss after {histories['char-rnn'][-1]['step']} steps (same text, same windows, same seed):")
    log(f"{'cell':6} {'final valid loss':>17} {'best valid loss':>16} {'train seconds':>14}")
    for recipe, history in histories.items():
        log(f"{CELLS[recipe]:6} {history[-1]['valid_loss']:17.4f} {min(r['valid_loss'] for r in history):16.4f}"
            f" {history[-1]['seconds']:14.0f}")
    lengths = [row["context"] for row in contexts["char-rnn"]]
    log("\nContext probe (best weights): validation loss when only the last k characters are the window's own")
    log(f"{'cell':6} " + " ".join(f"{'k=' + str(k):>7}" for k in lengths))
    for recipe, rows_ in contexts.items():
        log(f"{CELLS[recipe]:6} " + " ".join(f"{row['valid_loss']:7.4f}" for row in rows_))
    plot_comparison(histories, contexts, top / "cell_comparison.png")
    log(f"Comparison: {top}/cell_comparison.csv, context_probe.csv, cell_comparison.png; runs: "
        + ", ".join(str(top / r) for r in CELLS))
    return top


def comparison_folder(args, log):
    """A new comparison's folder (a RunDir, locked), its comparison.json naming the runs and the options given.
    With --resume, the comparison in --run-dir, the options it was started with set on `args` where not given
    (a run of a cell refuses options that contradict its config.json); None when it has finished."""
    if not getattr(args, "resume", False):
        folder = RunDir.create("char-cells", args.run_dir)
        write_json(folder.path / "comparison.json", {"runs": list(CELLS), "options": common.given_options(
            args, CharConfig), "finished": False})
        return folder
    if not args.run_dir:
        raise UserError("--resume needs --run-dir: the run folder to continue", exit_code=2)
    top = Path(args.run_dir)
    if not top.is_dir():
        raise UserError(f"{top}: no such run folder to resume", exit_code=2)
    if not (top / "comparison.json").is_file():
        raise UserError(f"{top} holds no cell comparison (no comparison.json); resume a single run without "
                               "--compare-cells", exit_code=2)
    comparison = read_json_object(top / "comparison.json", {"runs": list, "options": dict},
                                  "this folder is damaged")
    if comparison.get("finished", True):                  # without `finished`: written when the comparison ended
        log(f"{top}: the cell comparison has finished (cell_comparison.csv written); nothing to resume")
        return None
    folder = RunDir(top)
    folder.lock()
    for name, value in comparison["options"].items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    return folder


def cell_args(args, path, log):
    """`args` for the run of a cell in `path`: resumed when it has a checkpoint; one stopped before its first
    starts again."""
    args = copy.copy(args)
    resume = getattr(args, "resume", False)
    args.resume = resume and bool(RunDir(path).steps())
    if resume and path.exists() and not args.resume:
        log(f"{path} has no checkpoint yet: training it from the start")
        shutil.rmtree(path)
    return args


def plot_comparison(histories, contexts, path):
    figure, (axes, probe) = pyplot().subplots(1, 2, figsize=(12, 4.5))
    for recipe, history in histories.items():
        axes.plot([r["step"] for r in history], [r["valid_loss"] for r in history], marker="o", label=CELLS[recipe])
        probe.plot([r["context"] for r in contexts[recipe]], [r["valid_loss"] for r in contexts[recipe]],
                   marker="o", label=CELLS[recipe])
    axes.set_xlabel("training step (batches of windows)")
    axes.set_ylabel("validation loss (nats per character)")
    axes.set_title("Character generator: RNN vs LSTM vs GRU")
    probe.set_xscale("log", base=2)
    probe.set_xlabel("k: the window's own last characters (the rest from another window)")
    probe.set_ylabel("validation loss, best weights")
    probe.set_title("How far back each cell looks")
    for ax in (axes, probe):
        ax.legend()
        ax.grid(alpha=0.3)
    figure.tight_layout()
    save_figure(figure, path)


def generate(options, run, config):
    run.best_figure = BEST_FIGURE
    vocab = run.vocab()
    chars, train_text = vocab["chars"], vocab["train_text"]
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    maxlen = config.num_unrollings
    length, sampler, rng = common.generation(options, config)
    if options.prime:
        prime = options.prime
    else:                                                   # the article: a random window of the training text
        start = rng.randint(0, len(train_text) - maxlen)
        prime = train_text[start:start + maxlen]
    prime_ids = common.chars_of(prime, char_to_ix)
    model = CharModel(config, len(chars))
    with common.restored(run, model, options.checkpoint) as session:
        ids = model.generate(session, prime_ids, length, sampler, rng, maxlen)
    return prime + "".join(chars[i] for i in ids)
