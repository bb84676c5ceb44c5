"""`aesop-context`: the `aesop-word` LSTM given what its article's model lacks to retell the fable.

Not the article's model, and not a reproduction: our variant, kept beside the faithful `aesop-word`.
`aesop-word` cannot tell the fable's story back reliably, for two measured reasons (README, "aesop-word:
the story target"): (1) a word goes in as its raw id, one float, so windows whose ids are numerically
close look alike and the model learns about 90 % of the fable; (2) it sees 3 words, and the fable
continues "the cat ." with "some" once and with "by" once, so at that fork it can only guess. This
recipe changes exactly those two things and nothing else the story depends on:

- a word goes in one-hot (an identity embedding, as `shakespeare-char` feeds characters);
- the LSTM reads up to `--num-unrollings` (40) words from a zero state, the story so far, instead of 3:
  it is trained on windows of 40 words from random offsets with the loss at every word (so it predicts
  from 1 to 40 words of context), and a story is continued from its last 40 words (at most).

The rest is `aesop-word`'s: the dictionary by `Counter.most_common()` with the same seeded tie order,
`BasicLSTMCell(512)` (`--layers 2`: `MultiRNNCell`), output weights and biases from a standard normal,
softmax cross-entropy, RMSProp at 0.001, batch 1, greedy generation, the `Iter= ...` progress lines.

Resume (`train --recipe aesop-context --resume --run-dir RUN`): as `aesop-word`'s, except that the state file
holds the state of random.Random(seed), which draws the windows' offsets, as it stood after the iteration.
"""
import random
import time

import numpy as np
import tensorflow as tf

from reproduce.classics import aesop, common, fable
from reproduce.errors import UserError
from reproduce.progress import rate_and_eta
from reproduce.sample import draw, sample_greedy

tf1 = tf.compat.v1

METRICS = aesop.METRICS                     # aesop.save_progress writes them to metrics.csv


class ContextModel:
    """Word ids in (one-hot), the LSTM over up to `num_unrollings` of them, the next word at every step."""

    def __init__(self, config, vocab_size):
        c = config
        self.context = c.num_unrollings
        with common.new_graph(self, c.seed):
            self.ids = tf1.placeholder(tf.int32, [None, None], name="ids")            # [batch, words]
            self.lengths = tf1.placeholder(tf.int32, [None], name="lengths")          # words of each row
            self.targets = tf1.placeholder(tf.int32, [None, None], name="targets")    # the next word of each
            weights_out = tf1.Variable(tf1.random_normal([c.num_nodes, vocab_size]), name="weights_out")
            biases_out = tf1.Variable(tf1.random_normal([vocab_size]), name="biases_out")
            cells = [tf1.nn.rnn_cell.BasicLSTMCell(c.num_nodes) for _ in range(c.layers)]
            cell = cells[0] if c.layers == 1 else tf1.nn.rnn_cell.MultiRNNCell(cells)
            outputs, _ = tf1.nn.dynamic_rnn(cell, tf.one_hot(self.ids, vocab_size), sequence_length=self.lengths,
                                            dtype=tf.float32)
            logits = tf.tensordot(outputs, weights_out, 1) + biases_out                # [batch, words, vocab]
            mask = tf.sequence_mask(self.lengths, tf.shape(self.ids)[1], dtype=tf.float32)
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=self.targets, logits=logits)
            self.cost = tf.reduce_sum(losses * mask) / tf.reduce_sum(mask)
            self.optimizer = tf1.train.RMSPropOptimizer(learning_rate=c.learning_rate).minimize(self.cost)
            correct = tf.cast(tf.equal(tf.argmax(logits, 2, output_type=tf.int32), self.targets), tf.float32)
            self.accuracy = tf.reduce_sum(correct * mask) / tf.reduce_sum(mask)
            rows = tf.range(tf.shape(self.ids)[0])
            last = tf.gather_nd(logits, tf.stack([rows, self.lengths - 1], axis=1))    # after each row's last word
            self.probabilities = tf.nn.softmax(last)
            self.predicted = tf.argmax(last, 1)
            self.init = tf1.global_variables_initializer()

    def contexts_feed(self, contexts):
        """Feed for the next word after each of `contexts` (lists of ids; the last `context` ids are read)."""
        contexts = [list(c)[-self.context:] for c in contexts]
        width = max(len(c) for c in contexts)
        ids = np.zeros([len(contexts), width], dtype=np.int32)
        for row, c in enumerate(contexts):
            ids[row, :len(c)] = c
        return {self.ids: ids, self.lengths: np.array([len(c) for c in contexts], dtype=np.int32)}

    def text_accuracy(self, session, ids):
        """The share of the text's words after its first that the model predicts from the words before them."""
        predicted = session.run(self.predicted, self.contexts_feed([ids[:i] for i in range(1, len(ids))]))
        return float(np.mean(predicted == np.asarray(ids[1:])))

    def fork_probabilities(self, session, words, dictionary):
        """Where the text continues a 3-word context in two ways ("the cat ." -> "some" / "by"), the
        probability the model gives the text's word at each occurrence, from the words before it:
        "the cat . -> some 0.998 (word 26), by 0.996 (word 130); ..."."""
        ids = [dictionary[w] for w in words]
        text_forks = fable.text_forks(words, 3)
        if not text_forks:
            return ""
        at = [index for _, ways in text_forks for index, _ in ways]
        p = session.run(self.probabilities, self.contexts_feed([ids[:index] for index in at]))
        p_text = iter(p[row, ids[index]] for row, index in enumerate(at))
        return "; ".join(f"{' '.join(context)} -> " + ", ".join(f"{word} {next(p_text):.3f} (word {index + 1})"
                                                                for index, word in ways)
                         for context, ways in text_forks)

    def continue_story(self, session, ids, length, sampler=sample_greedy, rng=None):
        """Predict from the story's last `context` words, draw (greedy: the most probable), append, repeat.
        The drawn ids and, for each, the probabilities the model gave every word."""
        story, probabilities = list(ids[:-1]), []

        def step(current):
            story.append(current)
            probabilities.append(session.run(self.probabilities, self.contexts_feed([story]))[0])
            return probabilities[-1]

        return draw(step, ids[-1], length, sampler, rng), probabilities


def build(config, vocab_size):
    """The recipe's model for config.json's values (recipes.Recipe.build)."""
    return ContextModel(config, vocab_size)


def prime_ids(prime, dictionary, context):
    words = prime.split()
    if not 1 <= len(words) <= context:
        raise UserError(f"--prime {prime!r} has {len(words)} word(s); this model reads 1 to {context}",
                               exit_code=2)
    return aesop.word_ids(words, dictionary)


def train(args, config, log=print):
    """A run of `config` (a configs.AesopContextConfig) in --run-dir, or with --resume the run there."""
    run = common.open_run(args, config)
    if common.finished(run, log):
        return run.path
    config, context = run.config, run.config.num_unrollings
    words, dictionary = aesop.read_fable(run, log)
    model = build(config, len(dictionary))
    ids = [dictionary[w] for w in words]
    with common.session(run, model, log) as (session, state):
        log(f"Training {config.recipe} in {run.path}: {config.num_steps} iterations, {config.layers} x "
            f"{config.num_nodes} LSTM over windows of {context} one-hot words, vocabulary {len(dictionary)}")
        state = train_iterations(session, model, run, state, words, dictionary, log)
        aesop.log_finished(state, log)
        log(f"Words of the text predicted by the final model: {100 * model.text_accuracy(session, ids):.2f}% "
            f"of {len(ids) - 1}; at its 3-word forks: {model.fork_probabilities(session, words, dictionary)}")
        primer = aesop.ARTICLE_PRIME if all(w in dictionary for w in aesop.ARTICLE_PRIME.split()) \
            else " ".join(words[:3])
        aesop.tell_story(session, model, run, state, words, dictionary, primer,
                         prime_ids(primer, dictionary, context), log)
    return run.path


def train_iterations(session, model, run, state, words, dictionary, log):
    """Windows from random offsets, from the iteration after `state`'s (a new run: the first), with a checkpoint
    at every progress line and after the last iteration; returns the state of the last one. The state holds
    the generator of the offsets, random.Random(seed), as it stood after that iteration."""
    context, iterations, display = run.config.num_unrollings, run.config.num_steps, run.config.display_step
    ids, reverse_dictionary = [dictionary[w] for w in words], list(dictionary)
    offsets = random.Random(run.config.seed)
    if state:
        version, internal, gauss = state["offsets"]
        offsets.setstate((version, tuple(internal), gauss))
    rows, started = state.get("rows", []), time.monotonic() - state.get("seconds", 0.0)
    acc_total = loss_total = 0.0
    for step in range(run.saved_step, iterations):
        offset = offsets.randint(0, len(ids) - context - 1)
        feed = {model.ids: [ids[offset:offset + context]], model.lengths: [context],
                model.targets: [ids[offset + 1:offset + context + 1]]}
        _, acc, loss = session.run([model.optimizer, model.accuracy, model.cost], feed)
        loss_total += loss
        acc_total += acc
        if (step + 1) % display == 0:
            symbols_in = words[offset + context - 3:offset + context]          # the article's line, last 3
            predicted = session.run(model.predicted, model.contexts_feed([ids[offset:offset + context]]))
            row = {"iteration": step + 1, "average_loss": loss_total / display,
                   "average_accuracy": 100 * acc_total / display,
                   "text_accuracy": 100 * model.text_accuracy(session, ids),
                   "inputs": " ".join(symbols_in), "actual": words[offset + context],
                   "predicted": reverse_dictionary[int(predicted[0])],
                   "forks": model.fork_probabilities(session, words, dictionary),
                   "seconds": round(time.monotonic() - started, 2)}
            log("Iter= %d, Average Loss= %.6f, Average Accuracy= %.2f%%"
                % (step + 1, row["average_loss"], row["average_accuracy"])
                + f"  (text {row['text_accuracy']:.2f}%; "
                f"{rate_and_eta(started, step + 1, iterations, 'it')})")
            log("%s - [%s] vs [%s]" % (symbols_in, row["actual"], row["predicted"]))
            state = aesop.save_progress(session, run, rows, row, started, offsets=offsets.getstate())
            acc_total = loss_total = 0.0
    if run.saved_step < iterations:
        state = aesop.save_progress(session, run, rows, None, started, offsets=offsets.getstate())
    return state


def generate(options, run, config):
    return aesop.generate(options, run, config, ContextModel, prime_ids, training_walk=None)
