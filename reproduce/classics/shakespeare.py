"""`shakespeare-char`: the 2-layer character LSTM of "Long Short Term Memory (LSTM) and How to build
one from Scratch with Tensorflow" (../shared/seeds/shakespeare_2layer_lstm.txt), on Tiny Shakespeare.

Kept from the article, on purpose:
- float64 everywhere; characters one-hot through an identity matrix used as an embedding;
- `MultiRNNCell` of two `BasicLSTMCell(200, forget_bias=0.0)`, called once per `session.run`:
  batch 500 streams, each reading its own contiguous slice of the text, one character per run, with
  the state fed back from run to run (truncated back-propagation of length 1; `--unroll N` gives N);
- plain gradient descent at 0.01, gradients clipped to a global norm of 5, one epoch;
- the progress line `0.010 perplexity: 44.651 speed: 12345 wps` every 1 % of the epoch, at steps
  10, 10 + 1 %, ...: the perplexity is that of every training batch so far (the article stores it
  in `valid_perplexity`), and "wps" counts characters (the label comes from the word-level PTB code);
- 100 characters sampled after training from the seed character 'A'.

Resume (`train --recipe shakespeare-char --resume --run-dir RUN`, common.open_run): a checkpoint is written every
10 progress lines and after the last step. Its state file holds, beside the step, the metrics rows and the
seconds trained, the LSTM state carried into the next step (every layer's c and h, float64, exactly) and the
sums behind the progress line's perplexity (`costs`, `iters`). The closing sample is drawn again from the
final weights and the seed.
"""
import time

import numpy as np
import tensorflow as tf

from reproduce.classics import common
from reproduce.classics.configs import SHAKESPEARE_TEXT
from reproduce.errors import UserError
from reproduce.files import write_atomic, write_csv
from reproduce.progress import rate_and_eta
from reproduce.sample import draw, sample_temperature
from reproduce.session import decode_array, encode_array, plain_rows

tf1 = tf.compat.v1

TEXT_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
DEFAULT_TEXT = SHAKESPEARE_TEXT
METRICS = ["step", "epoch", "perplexity", "loss", "chars_per_second", "seconds"]


def vocabulary(text):
    """Characters in sorted order. The article used `list(set(data))`, whose order changes with every
    Python process (string hashing); sorting gives the same ids in every run and changes nothing else."""
    return sorted(set(text))


def stream_batches(ids, batch_size):
    """The article's `all_input_batches` and `all_target_batches` as two [rows, batch] arrays:
    row i, column j holds character i + rows * j and the one after it (rows = (len - 1) // batch)."""
    rows = (len(ids) - 1) // batch_size
    positions = np.arange(rows)[:, None] + rows * np.arange(batch_size)[None, :]
    return ids[positions], ids[positions + 1]


class ShakespeareModel:
    def __init__(self, config, vocab_size):
        c = config
        with common.new_graph(self, c.seed):
            embedding = tf.constant(np.identity(vocab_size))                       # float64 one-hot rows
            self.inputs = tf1.placeholder(tf.int32, [c.num_unrollings, c.batch_size], name="inputs")
            self.targets = tf1.placeholder(tf.int32, [c.num_unrollings, c.batch_size], name="targets")
            cell = tf1.nn.rnn_cell.MultiRNNCell(
                [tf1.nn.rnn_cell.BasicLSTMCell(c.num_nodes, forget_bias=c.forget_bias, state_is_tuple=True)
                 for _ in range(c.layers)], state_is_tuple=True)
            # The article feeds the carried state into the tensors of `zero_state` itself.
            self.initial_state = cell.zero_state(c.batch_size, tf.float64)
            softmax_w = tf1.get_variable("softmax_w", [c.num_nodes, vocab_size], tf.float64)
            softmax_b = tf1.get_variable("softmax_b", [vocab_size], tf.float64)
            state, losses = self.initial_state, []
            for t in range(c.num_unrollings):        # 1 in the article: one cell call per session.run
                output, state = cell(tf.nn.embedding_lookup(embedding, self.inputs[t]), state=state)
                logits = tf1.nn.xw_plus_b(output, softmax_w, softmax_b)
                losses.append(tf1.losses.softmax_cross_entropy(tf.nn.embedding_lookup(embedding, self.targets[t]),
                                                               logits))
            self.final_state = state
            self.loss = tf.add_n(losses) / len(losses)
            self.lr = tf1.Variable(c.learning_rate, trainable=False, name="lr", dtype=tf.float64)
            tvars = tf1.trainable_variables()
            grads, _ = tf.clip_by_global_norm(tf.gradients(self.loss, tvars), c.clip_norm)
            self.train_op = tf1.train.GradientDescentOptimizer(self.lr).apply_gradients(
                zip(grads, tvars), global_step=tf1.train.get_or_create_global_step())

            # Sampling: one character at a time through the same cells and output layer.
            self.single_input = tf1.placeholder(tf.int32, [1], name="single_input")
            self.inference_initial_state = cell.zero_state(1, tf.float64)
            single_output, self.final_inference_state = cell(tf.nn.embedding_lookup(embedding, self.single_input),
                                                             state=self.inference_initial_state)
            self.single_probabilities = tf.nn.softmax(tf1.nn.xw_plus_b(single_output, softmax_w, softmax_b))
            self.init = tf1.global_variables_initializer()

    def state_feed(self, placeholders, values):
        feed = {}
        for (c, h), value in zip(placeholders, values):
            feed[c], feed[h] = value[0], value[1]           # an LSTMStateTuple, or (c, h) from a checkpoint
        return feed

    def sample(self, session, prime, length, sampler, rng):
        """Feed the primer one id at a time, then draw `length` ids, each fed back with the carried state."""
        state = session.run(self.inference_initial_state)

        def step(current):
            nonlocal state
            feed = {self.single_input: [current], **self.state_feed(self.inference_initial_state, state)}
            probabilities, state = session.run([self.single_probabilities, self.final_inference_state], feed)
            return probabilities[0]

        for current in prime[:-1]:
            step(current)
        return draw(step, prime[-1], length, sampler, rng)


def build(config, vocab_size):
    """The recipe's model for config.json's values (recipes.Recipe.build)."""
    return ShakespeareModel(config, vocab_size)


def seed_char(config, chars):
    """The article's seed character 'A', or the first character of a text without one."""
    return config.seed_char if config.seed_char in chars else chars[0]


def train(args, config, log=print):
    """A run of `config` (a configs.ShakespeareConfig) in --run-dir, or with --resume the run there."""
    run = common.open_run(args, config)
    if common.finished(run, log):
        return run.path
    config = run.config
    text = common.read_text(config.text_file, TEXT_URL,
                            download=args.download or config.text_file == DEFAULT_TEXT, log=log)
    chars = vocabulary(text)
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    ids = np.array([char_to_ix[ch] for ch in text], dtype=np.int32)
    batch, unroll = config.batch_size, config.num_unrollings
    epoch_size = len(text) // batch - 1                    # the article's steps per epoch
    steps_per_epoch = epoch_size // unroll
    if steps_per_epoch < 1:
        raise UserError(f"{config.text_file}: {len(text)} characters cannot fill a batch of {batch} "
                               f"streams x {unroll} steps; lower --batch-size or --unroll", exit_code=2)
    num_steps = config.num_steps = config.num_steps or steps_per_epoch
    log(f"data has {len(text)} characters, {len(chars)} unique.")

    common.start(run, {"chars": chars})
    model = ShakespeareModel(config, len(chars))
    with common.session(run, model, log) as (session, state):
        log(f"Training {config.recipe} in {run.path}: {num_steps} steps of {batch} streams x {unroll} character(s) "
            f"({num_steps / steps_per_epoch:.2f} epoch), {config.layers} x {config.num_nodes} LSTM, float64")
        state = train_steps(session, model, run, state, stream_batches(ids, batch), epoch_size, log)
        rng = np.random.RandomState(config.seed)
        prime = seed_char(config, chars)
        sample = model.sample(session, [char_to_ix[prime]], config.sample_length,
                              sample_temperature, rng)
        text_out = prime + "".join(chars[i] for i in sample)
        write_atomic(run.path / "samples.txt", text_out + "\n")
        run.finish(state)
    log(f"Sample from {prime!r}:\n{text_out}")
    log(f"Run folder: {run.path}  (config.json, vocab.json, metrics.csv, samples.txt, ckpt/)")
    return run.path


def train_steps(session, model, run, state, batches, epoch_size, log):
    """The article's loop, from the step after `state`'s (a new run: from the first), with a checkpoint every
    10 progress lines and after the last step; returns the state of the last one."""
    c, (inputs, targets) = run.config, batches
    unroll, num_steps = c.num_unrollings, c.num_steps
    steps_per_epoch = epoch_size // unroll
    display = c.display_step or max(1, steps_per_epoch // 100)
    carry = [[decode_array(a) for a in layer] for layer in state["carry"]] if state \
        else session.run(model.initial_state)
    costs, iters, rows = state.get("costs", 0.0), state.get("iters", 0), state.get("rows", [])
    started = time.monotonic() - state.get("seconds", 0.0)
    for step in range(run.saved_step, num_steps):
        row = (step % steps_per_epoch) * unroll
        feed = {model.inputs: inputs[row:row + unroll], model.targets: targets[row:row + unroll],
                **model.state_feed(model.initial_state, carry)}
        cost, carry, _ = session.run([model.loss, model.final_state, model.train_op], feed)
        costs += cost
        iters += 1
        # The article prints at `step % (epoch_size // 100) == 10` (10 % interval for short intervals).
        if step % display == 10 % display or step == num_steps - 1:
            seconds = time.monotonic() - started
            speed = iters * c.batch_size * unroll / seconds
            perplexity = float(np.exp(costs / iters))
            pace = rate_and_eta(started, step + 1, num_steps, "characters", c.batch_size * unroll)
            log("%.3f perplexity: %.3f speed: %.0f wps" % (step * unroll / epoch_size, perplexity, speed)
                + f"  (step {step + 1}/{num_steps}: {pace})")
            rows.append({"step": step + 1, "epoch": round(step * unroll / epoch_size, 4),
                         "perplexity": perplexity, "loss": float(cost), "chars_per_second": round(speed),
                         "seconds": round(seconds, 2)})
            write_csv(run.path / "metrics.csv", METRICS, rows)
            if len(rows) % 10 == 0 or step == num_steps - 1:
                state = {"costs": costs, "iters": iters, "rows": plain_rows(rows), "seconds": seconds,
                         "carry": [[encode_array(a) for a in layer] for layer in carry]}
                common.save(run, session, step + 1, state)
    return state


def generate(options, run, config):
    chars = run.vocab()["chars"]
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    prime = options.prime if options.prime else seed_char(config, chars)
    prime_ids = common.chars_of(prime, char_to_ix)
    length, sampler, rng = common.generation(options, config)
    model = ShakespeareModel(config, len(chars))
    with common.restored(run, model, options.checkpoint) as session:
        ids = model.sample(session, prime_ids, length, sampler, rng)
    return prime + "".join(chars[i] for i in ids)
