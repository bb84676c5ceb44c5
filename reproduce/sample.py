"""Sampling (spec §6) and the `generate` command: a story from a checkpoint restored in a fresh graph."""
import sys

import numpy as np
import tensorflow as tf

from reproduce.beam import beam_generate
from reproduce.config import Config
from reproduce.data import UNK
from reproduce.errors import UserError
from reproduce.rundir import RunDir
from reproduce.model import BookModel
from reproduce.session import session_config
from reproduce.numpy_steps import NumpyModel

tf1 = tf.compat.v1


def sample_top3(distribution, rng):
    """The book's `sample()`: one of the 3 most probable ids, in proportion to their renormalised probability."""
    best_inds = np.argsort(distribution)[-3:]
    best_probs = distribution[best_inds] / np.sum(distribution[best_inds])
    return int(rng.choice(best_inds, p=best_probs))


def sample_greedy(distribution, rng):
    return int(np.argmax(distribution))


def sample_temperature(distribution, rng, temperature=1.0):
    """The char-rnn article's `sample(preds, temperature)`: log, divide by the temperature, renormalise, draw."""
    logits = np.log(np.asarray(distribution, dtype=np.float64) + 1e-20) / temperature
    p = np.exp(logits - logits.max())
    return int(rng.choice(len(p), p=p / p.sum()))


def pick_sampler(name, temperature=1.0):
    """The sampler `name` (top3, greedy or temperature; checked by recipes.check_generate_options): a function
    (distribution, rng) -> id."""
    if name == "temperature":
        return lambda d, rng: sample_temperature(d, rng, temperature)
    return {"top3": sample_top3, "greedy": sample_greedy}[name]


def draw(step, first_id, length, sampler, rng):
    """The generation loop of every recipe: feed an id (`step(id)` returns the distribution of the next),
    draw the next with `sampler`, feed it back; `length` ids after `first_id`."""
    ids, current = [], first_id
    for _ in range(length):
        current = sampler(step(current), rng)
        ids.append(current)
    return ids


def generate_ids(session, model, first_id, length, sampler, rng):
    """The book's generation loop: feed a bigram, run `test_prediction`, draw the next, feed it back."""
    return draw(lambda current: session.run(model.test_prediction, model.test_feed(current)).ravel(),
                first_id, length, sampler, rng)


def generate_ids_numpy(session, model, first_id, length, sampler, rng):
    """`generate_ids` without a `session.run` per bigram (about 7x faster), for every cell of the fast graph.

    The variables and the test state are read from the session once; each step is then the test
    subgraph's mathematics in float32 numpy (`numpy_steps.NumpyModel`), so the same seed gives the
    same story (bench.py and tests/test_evaluate.py check it). The session's test state is left as it was.
    """
    steps = NumpyModel.from_session(session, model.cell, model.w, model.b)
    states = tuple(session.run(model.test_state))

    def step(current):
        nonlocal states
        output, states = steps.step([current], states)
        return steps.probabilities(output).ravel()

    return draw(step, first_id, length, sampler, rng)


def primer_bigrams(text):
    """A primer as the model sees text: lower-cased, cut into non-overlapping bigrams (an odd last character dropped)."""
    text = text.lower()
    return [text[i:i + 2] for i in range(0, len(text) - 1, 2)]


def generate(checkpoint, length=500, seed=None, prime=None, sampler="top3", temperature=1.0, beam_length=5,
             beam_neighbors=5, graph=None, warn=None, no_repeat_ngram=None):
    """Restore a checkpoint of a book run in a fresh graph and return the story (primer included) as text; the
    options as recipes.check_generate_options checked them."""
    warn = warn or (lambda message: print(message, file=sys.stderr))
    run, prefix = RunDir.find(checkpoint)
    config = Config.from_dict(run.read_config(), source=run.path / "config.json")
    vocab = run.vocab({"bigrams": list})
    if prefix is None:
        run.checkpoint_for_generation()           # none yet: say so before the graph is built
    if graph:                                     # either graph restores the other's checkpoints
        config.graph = graph
    reverse_dictionary = vocab["bigrams"]
    dictionary = {bigram: i for i, bigram in enumerate(reverse_dictionary)}
    rng = np.random.RandomState(config.seed if seed is None else seed)

    if prime:
        bigrams = primer_bigrams(prime)
        if not bigrams:
            raise UserError(f"--prime {prime!r} is shorter than one bigram (two characters)", exit_code=2)
        unknown = sorted({b for b in bigrams if b not in dictionary or b == UNK})
        if unknown:
            warn(f"warning: {len(unknown)} bigram(s) of the primer are not in the vocabulary and become UNK: "
                 + ", ".join(repr(b) for b in unknown[:10]))
        if len(prime) % 2:
            warn(f"warning: the primer has an odd length; its last character {prime[-1]!r} is dropped")
        prime_ids = [dictionary.get(b, 0) for b in bigrams]
    else:
        # A random training bigram, drawn in proportion to its count in the training stories.
        counts = np.asarray(vocab.get("counts") or [1] * len(reverse_dictionary), dtype=np.float64)
        prime_ids = [int(rng.choice(len(counts), p=counts / counts.sum()))]

    model = BookModel(config, len(reverse_dictionary))
    with tf1.Session(graph=model.graph, config=session_config()) as session:
        run.restore_for_reading(session, model.saver, model.saved_variables, prefix)
        if sampler.startswith("beam"):
            ids = beam_generate(session, model, prime_ids, length, beam_length, beam_neighbors, rng,
                                book_quirks=(sampler == "beam-book"), no_repeat_ngram=no_repeat_ngram)
        else:
            for bigram_id in prime_ids[:-1]:
                session.run(model.test_prediction, model.test_feed(bigram_id))
            # The book's loop on the faithful graph; the same steps in numpy on the fast one.
            generate_from = generate_ids_numpy if config.graph == "fast" else generate_ids
            ids = generate_from(session, model, prime_ids[-1], length, pick_sampler(sampler, temperature), rng)
    return "".join(reverse_dictionary[i] for i in prime_ids + ids)
