"""`aesop-word`: the word LSTM of "LSTM by Example using Tensorflow" (Atienza, 2017;
../shared/seeds/aesop_word_lstm.txt) on the fable "Belling the Cat" (shipped beside this module).

Kept from the article, on purpose:
- the words are the fable split on whitespace (punctuation marks are words), numbered by
  `Counter.most_common()` (`,` is 0, `the` 1, ..., `spoke` 111);
- the 3 input words go in as their raw ids, floats in a [1, 3, 1] placeholder, not one-hot or embedded;
- `static_rnn` over a `BasicLSTMCell(512)` (`--layers 2`: the `MultiRNNCell` of its listing 10),
  output weights and biases drawn from a standard normal, softmax cross-entropy, RMSProp at 0.001;
- 50,000 iterations of batch 1. The window's offset moves by n_input + 1 = 4 words per iteration (the
  windows do not overlap) and restarts at a random offset in [0, 4] past the end of the fable;
- every 1,000 iterations `Iter= 50000, Average Loss= 0.415811, Average Accuracy= 91.20%` and
  `['this', 'means', 'we'] - [should] vs [should]`: the last window's words, the actual next word,
  then the predicted one (predicted by the forward pass of that same training run);
- generation feeds each argmax prediction back as the newest of the 3 input words.
Added: every 1,000 iterations, the share of all the text's windows the model predicts (`text_accuracy`)
and its probabilities at the text's forks, the contexts the text continues in two ways ("the cat ." ->
"some" / "by"; `forks`), in metrics.csv; after a story, how many of its words are the text's, how many
follow their own context as somewhere in the text, and which way it went at each fork.

Resume (`train --recipe aesop-word --resume --run-dir RUN`, common.open_run): a checkpoint at every progress line
and after the last iteration; its state file holds the step, the metrics rows and the seconds trained. The
walk over the fable is replayed up to the checkpoint's iteration: a generator over random.Random(seed) that
yields one offset per iteration. The closing story is told again from the final weights.
"""
import random
import sys
import time
from collections import Counter

import numpy as np
import tensorflow as tf

from reproduce.classics import common, fable
from reproduce.errors import UserError
from reproduce.files import pyplot, save_figure, write_atomic, write_csv, write_json
from reproduce.progress import format_seconds, rate_and_eta
from reproduce.rundir import checkpoint_step
from reproduce.sample import draw, sample_greedy
from reproduce.session import plain_rows

tf1 = tf.compat.v1

ARTICLE_PRIME = "had a general"
METRICS = ["iteration", "average_loss", "average_accuracy", "text_accuracy", "inputs", "actual", "predicted", "forks",
           "seconds"]


def build_dataset(words, seed):
    """word -> id by decreasing frequency (`Counter.most_common`), and id -> word.

    Words of equal frequency come in an arbitrary order drawn from `seed`. The article's Python ordered
    them by string hash ("council" 37 and "spoke" 111 in its run; "Expect a different dictionary as well
    per run"). Python 3.7+ would order them by first appearance, numbering runs of rare words one after
    another (consider 40, what 41, measures 42, they 43); with raw ids as inputs, neighbouring windows
    then look alike and the model confuses them (`what measures they` -> `they`, not `could`).
    """
    counts = Counter(words)
    arbitrary = random.Random(seed).sample(sorted(counts), len(counts))
    dictionary = {}
    for word, _ in Counter({word: counts[word] for word in arbitrary}).most_common():
        dictionary[word] = len(dictionary)
    return dictionary, [word for word in dictionary]


class AesopModel:
    def __init__(self, config, vocab_size):
        c = config
        n_input, n_hidden = c.num_unrollings, c.num_nodes
        with common.new_graph(self, c.seed):
            self.x = tf1.placeholder(tf.float32, [None, n_input, 1], name="x")        # raw word ids as floats
            self.y = tf1.placeholder(tf.float32, [None, vocab_size], name="y")        # one-hot next word
            weights_out = tf1.Variable(tf1.random_normal([n_hidden, vocab_size]), name="weights_out")
            biases_out = tf1.Variable(tf1.random_normal([vocab_size]), name="biases_out")
            inputs = tf.split(tf.reshape(self.x, [-1, n_input]), n_input, 1)        # n_input tensors [batch, 1]
            if c.layers == 1:
                cell = tf1.nn.rnn_cell.BasicLSTMCell(n_hidden)
            else:
                cell = tf1.nn.rnn_cell.MultiRNNCell([tf1.nn.rnn_cell.BasicLSTMCell(n_hidden)
                                                     for _ in range(c.layers)])
            outputs, _ = tf1.nn.static_rnn(cell, inputs, dtype=tf.float32)
            self.pred = tf.matmul(outputs[-1], weights_out) + biases_out               # the last output only
            self.cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=self.pred, labels=self.y))
            self.optimizer = tf1.train.RMSPropOptimizer(learning_rate=c.learning_rate).minimize(self.cost)
            self.predicted = tf.argmax(self.pred, 1)
            self.probabilities = tf.nn.softmax(self.pred)
            correct = tf.equal(self.predicted, tf.argmax(self.y, 1))
            self.accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
            self.init = tf1.global_variables_initializer()

    def keys(self, ids):
        return np.reshape(np.array(ids, dtype=np.float32), [-1, len(ids), 1])

    def text_accuracy(self, session, words, dictionary):
        """The share of all the text's windows whose next word the model predicts now (the article's average
        accuracy is over the last 1,000 windows read, each before its own update). A fork's two windows
        have one input and two next words, so the fable allows at most 199 of its 201."""
        n_input = int(self.x.shape[1])
        ids = np.array([dictionary[w] for w in words], dtype=np.float32)
        starts = np.arange(len(words) - n_input)
        keys = ids[starts[:, None] + np.arange(n_input)][:, :, None]
        predicted = session.run(self.predicted, {self.x: keys})
        return float(np.mean(predicted == ids[starts + n_input].astype(np.int64)))

    def fork_probabilities(self, session, words, dictionary):
        """At each context the text continues in more than one way ("the cat ." -> "some" / "by"), the
        probability the model gives each continuation: "the cat . -> some 0.579 by 0.418; ..."."""
        n_input = int(self.x.shape[1])
        text_forks = [(context, list(dict.fromkeys(word for _, word in ways)))
                      for context, ways in fable.text_forks(words, n_input)]
        if not text_forks:
            return ""
        keys = np.array([[dictionary[w] for w in context] for context, _ in text_forks], dtype=np.float32)
        p = session.run(self.probabilities, {self.x: keys[:, :, None]})
        return "; ".join(f"{' '.join(context)} -> " + " ".join(f"{w} {p[i, dictionary[w]]:.3f}" for w in ways)
                         for i, (context, ways) in enumerate(text_forks))

    def continue_story(self, session, ids, length, sampler=sample_greedy, rng=None):
        """The article's generation loop: predict, draw (greedy: the most probable), append, drop the oldest
        input word, repeat. Returns the drawn ids and, for each, the probabilities the model gave every word."""
        window, probabilities = list(ids[:-1]), []

        def step(current):
            window.append(current)
            probabilities.append(session.run(self.probabilities, {self.x: self.keys(window[-len(ids):])})[0])
            return probabilities[-1]

        return draw(step, ids[-1], length, sampler, rng), probabilities


def build(config, vocab_size):
    """The recipe's model for config.json's values (recipes.Recipe.build)."""
    return AesopModel(config, vocab_size)


def report_match(words, prime, predicted, log, probabilities=None, dictionary=None):
    """Log how the story matches the text (fable.story_measures): the words as in the text after the prime and
    where the story first leaves it; the words that follow their context as somewhere in the text; and at each
    context the text continues in two ways, which way the story went (with the model's probabilities of each,
    when given). Returns the measures."""
    measures = fable.story_measures(words, prime, predicted, probabilities, dictionary)
    length, matched, departure = len(predicted), measures["words_as_in_text"], measures["first_departure"]
    if matched is not None:
        log(f"({matched} of the {length} words after {' '.join(prime)!r} are the text's)")
    if departure:
        log(f"(it leaves the text at word {departure['word']}: {departure['story']!r} where the text has "
            f"{departure['text']!r})")
    if not words:
        return measures
    log(f"({measures['follow_their_context']} of the {length} follow their {len(prime)} preceding "
        "words as somewhere in the text)")
    for fork in measures["forks"]:
        line = (f"(word {fork['word']} follows {fork['context']!r}, which the text continues with "
                + " and ".join(f"{way['word']!r} (word {way['at']})" for way in fork["text"]))
        if "model" in fork:
            line += "; the model: " + ", ".join(f"{word!r} {p:.3f}" for word, p in fork["model"].items())
        log(line + f" -> {fork['took']!r})")
    return measures


def report_walk(reads, log):
    """One line a fork of the text: the window the training walk read last, and how long before its end
    (fable.walk_reads)."""
    for context, read in reads.items():
        before = sorted(read["iterations_before_the_end"].items(), key=lambda item: item[1])
        if before:
            log(f"(training read {context!r} last with {before[0][0]!r}, {before[0][1]} iteration(s) before its "
                "end; " + ", ".join(f"{word!r} {n} before" for word, n in before[1:]) + ")")


def prime_ids(prime, dictionary, n_input):
    words = prime.split()
    if len(words) != n_input:
        raise UserError(f"--prime {prime!r} has {len(words)} word(s); this model reads exactly {n_input}",
                               exit_code=2)
    return word_ids(words, dictionary)


def word_ids(words, dictionary):
    """The ids of a primer's words; a one-line error naming a word the run was not trained on."""
    for word in words:
        if word not in dictionary:
            raise UserError(f"--prime: the word {word!r} is not in the dictionary of the {len(dictionary)} "
                                   "words this run was trained on", exit_code=2)
    return [dictionary[word] for word in words]


def log_finished(state, log):
    """The article's closing lines of training."""
    log("Optimization Finished!")
    log(f"Elapsed time: {format_seconds(state['seconds'])}")


def train(args, config, log=print):
    """A run of `config` (a configs.AesopConfig) in --run-dir, or with --resume the run there."""
    run = common.open_run(args, config)
    if common.finished(run, log):
        return run.path
    config, n_input = run.config, run.config.num_unrollings
    words, dictionary = read_fable(run, log)
    model = build(config, len(dictionary))
    with common.session(run, model, log) as (session, state):
        log(f"Training {config.recipe} in {run.path}: {config.num_steps} iterations, {config.layers} x "
            f"{config.num_nodes} LSTM over {n_input} words, vocabulary {len(dictionary)}")
        state = train_iterations(session, model, run, state, words, dictionary, log)
        log_finished(state, log)
        accuracy = model.text_accuracy(session, words, dictionary)
        log(f"Windows of the text predicted by the final model: {100 * accuracy:.2f}% of {len(words) - n_input}; "
            f"at its forks: {model.fork_probabilities(session, words, dictionary)}")
        primer = ARTICLE_PRIME if all(w in dictionary for w in ARTICLE_PRIME.split()) and n_input == 3 \
            else " ".join(words[:n_input])
        tell_story(session, model, run, state, words, dictionary, primer, prime_ids(primer, dictionary, n_input), log)
    return run.path


def tell_story(session, model, run, state, words, dictionary, primer, primer_ids, log):
    """The closing story, greedy from `primer`: into samples.txt, then the run marked finished; the story is
    printed with how it matches the text."""
    story, probabilities = model.continue_story(session, primer_ids, run.config.sample_length)
    reverse_dictionary = list(dictionary)                 # id -> word: the dictionary numbers words in order
    predicted = [reverse_dictionary[i] for i in story]
    text = " ".join([primer] + predicted)
    write_atomic(run.path / "samples.txt", text + "\n")
    plot_progress(state["rows"], run.path / "metrics.png", run.config.recipe)
    run.finish(state)
    log(text)
    report_match(words, primer.split(), predicted, log, probabilities, dictionary)
    log(f"Run folder: {run.path}  (config.json, vocab.json, metrics.csv, metrics.png, samples.txt, ckpt/)")


def plot_progress(rows, path, recipe):
    """metrics.png: the accuracies per progress line (left) and the model's probability of each
    continuation at the fable's forks (right), written whole or not at all."""
    iterations = [int(row["iteration"]) for row in rows]
    figure, (left, right) = pyplot().subplots(1, 2, figsize=(11, 4))
    left.plot(iterations, [float(row["average_accuracy"]) for row in rows], label="Average Accuracy (training)")
    left.plot(iterations, [float(row["text_accuracy"]) for row in rows], label="the fable, current weights")
    left.set(xlabel="iteration", ylabel="% predicted", ylim=(0, 100), title=f"{recipe}: accuracy")
    left.legend(loc="lower right")
    curves = {}
    for row in rows:
        for label, p in fable.fork_series(row["forks"]):
            curves.setdefault(label, []).append(p)
    for label, values in curves.items():
        if len(values) == len(iterations):
            right.plot(iterations, values, label=label)
    right.set(xlabel="iteration", ylabel="probability", ylim=(0, 1), title="at the fable's forks")
    right.legend(loc="best", fontsize="small")
    figure.tight_layout()
    save_figure(figure, path)


def article_walk(n_words, config):
    """The window starts of a run's iterations over a text of `n_words` (fable.window_offsets, seeded by the run)."""
    return fable.window_offsets(n_words, config.num_unrollings, random.Random(config.seed))


def read_fable(run, log):
    """The words of the run's text and their dictionary (its seeded tie order), with the vocabulary written, or
    for a resumed run checked (`Run.start`). The text must hold more words than --num-unrollings."""
    config, n = run.config, run.config.num_unrollings
    words = fable.read_words(common.read_text(config.text_file))
    if len(words) < n + 1:
        raise UserError(f"{config.text_file}: {len(words)} words; --num-unrollings {n} needs at least "
                               f"{n + 1}", exit_code=2)
    dictionary, reverse_dictionary = build_dataset(words, config.seed)
    log(f"Loaded training data... {len(words)} words, {len(dictionary)} unique")
    common.start(run, {"words": reverse_dictionary, "text": words})
    return words, dictionary


def train_iterations(session, model, run, state, words, dictionary, log):
    """The article's loop, from the iteration after `state`'s (a new run: the first), with a checkpoint at
    every progress line and after the last iteration; returns the state of the last one. The walk is
    replayed up to there: a generator over random.Random(seed) that yields one offset per iteration."""
    n_input, iterations, display = run.config.num_unrollings, run.config.num_steps, run.config.display_step
    reverse_dictionary = list(dictionary)                 # id -> word: the dictionary numbers words in order
    walk = article_walk(len(words), run.config)
    for _ in range(run.saved_step):
        next(walk)
    rows, started = state.get("rows", []), time.monotonic() - state.get("seconds", 0.0)
    acc_total = loss_total = 0.0
    for step, offset in zip(range(run.saved_step, iterations), walk):
        keys = [dictionary[words[i]] for i in range(offset, offset + n_input)]
        onehot = np.zeros([1, len(dictionary)], dtype=np.float32)
        onehot[0, dictionary[words[offset + n_input]]] = 1.0
        _, acc, loss, predicted = session.run([model.optimizer, model.accuracy, model.cost, model.predicted],
                                              {model.x: model.keys(keys), model.y: onehot})
        loss_total += loss
        acc_total += acc
        if (step + 1) % display == 0:
            symbols_in = words[offset:offset + n_input]
            row = {"iteration": step + 1, "average_loss": loss_total / display,
                   "average_accuracy": 100 * acc_total / display,
                   "text_accuracy": 100 * model.text_accuracy(session, words, dictionary),
                   "inputs": " ".join(symbols_in),
                   "actual": words[offset + n_input], "predicted": reverse_dictionary[int(predicted[0])],
                   "forks": model.fork_probabilities(session, words, dictionary),
                   "seconds": round(time.monotonic() - started, 2)}
            log("Iter= %d, Average Loss= %.6f, Average Accuracy= %.2f%%"
                % (step + 1, row["average_loss"], row["average_accuracy"])
                + f"  ({rate_and_eta(started, step + 1, iterations, 'it')})")
            log("%s - [%s] vs [%s]" % (symbols_in, row["actual"], row["predicted"]))
            state = save_progress(session, run, rows, row, started)
            acc_total = loss_total = 0.0
    if run.saved_step < iterations:
        state = save_progress(session, run, rows, None, started)
    return state


def save_progress(session, run, rows, row, started, **carried):
    """A progress `row` (None after the last iteration, between progress lines) into metrics.csv, then the
    checkpoint of its iteration with the loop's state: the rows, the seconds trained and what `carried` holds."""
    if row is not None:
        rows.append(row)
        write_csv(run.path / "metrics.csv", METRICS, rows)
    state = {"rows": plain_rows(rows), "seconds": time.monotonic() - started, **carried}
    common.save(run, session, row["iteration"] if row else run.config.num_steps, state)
    return state


def generate(options, run, config, model_class=AesopModel, read_prime=prime_ids, training_walk=article_walk):
    """The story after --prime from the run's checkpoint, with how it matches the text on stderr and, with
    --report, in a JSON file; aesop-context passes its own model and prime rule, and no walk (its windows come
    from random offsets): aesop-word's says which window of each fork training read last."""
    vocab = run.vocab()
    reverse_dictionary, text = vocab["words"], vocab.get("text", [])
    dictionary = {word: i for i, word in enumerate(reverse_dictionary)}
    prime = options.prime if options.prime is not None else ARTICLE_PRIME
    ids = read_prime(prime, dictionary, config.num_unrollings)
    length, sampler, rng = common.generation(options, config)
    model = model_class(config, len(reverse_dictionary))
    with common.restored(run, model, options.checkpoint) as session:
        story, probabilities = model.continue_story(session, ids, length, sampler, rng)
    predicted = [reverse_dictionary[i] for i in story]

    def log(line):                                          # stdout holds the story alone
        print(line, file=sys.stderr)

    measures = report_match(text, prime.split(), predicted, log, probabilities, dictionary)
    step = checkpoint_step(run.restored_checkpoint) or config.num_steps
    if training_walk is not None and text:
        measures["walk"] = fable.walk_reads(text, config.num_unrollings, training_walk(len(text), config), step,
                                            config.display_step)
        report_walk(measures["walk"], log)
    if options.report:
        write_json(options.report, {"recipe": config.recipe, "seed": config.seed, "step": step,
                                    "sampler": options.sampler, "length": length, **measures})
        log(f"(the story's measures written to {options.report})")
    return " ".join(prime.split() + predicted)
