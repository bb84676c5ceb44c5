"""Beam-search generation as the book's main notebook builds it (loop.md, "Extensions").

In the graph: one saved output (and cell state) variable per beam, a reset op, and an update op that
copies the chosen parents' states into every beam. The beams step together as one batch of
`beam_neighbors` rows, each row read from and written back to its own variables.

In Python, per segment of `beam_length` bigrams: expand the root into the `beam_neighbors` most
probable bigrams, then `beam_length - 1` times keep the best `beam_neighbors` children of all
beams, and finally draw one beam among the top 3 in proportion to its joint probability.

Two things the book's `get_beam_prediction` does differently are available with `book_quirks=True`
(`--sampler beam-book`): it ranks children by their own conditional probability rather than the
joint probability of the sequence, and it continues from `parent_beam_indices[random_id]`, the
parent of the drawn beam's last bigram, instead of the drawn beam itself.

With `no_repeat_ngram=N` (`--no-repeat-ngram N`, either beam sampler) a child is refused when it would repeat
the sequence's last N bigrams immediately (its history counts the primer and the segments before): its score is
-1 before the children are ranked, at the root and at every step. On the main LSTM run the joint probability
otherwise favours a run of spaces, which it is very sure of once begun.
"""
import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1


class BeamGraph:
    """The per-beam variables and ops, added to a built BookModel's graph (not part of checkpoints)."""

    def __init__(self, model, beam_neighbors):
        self.model = model
        self.size = beam_neighbors
        K, H, V = beam_neighbors, model.config.num_nodes, model.vocabulary_size
        with model.graph.as_default(), tf1.name_scope("beam"):
            self.saved = [[tf1.Variable(tf.zeros([1, H]), trainable=False, name=f"saved_sample_beam_{name}_{k}")
                           for k in range(K)] for name in model.cell.state_names]
            if model.config.graph == "faithful":
                self.inputs = tf1.placeholder(tf.float32, [K, V], name="sample_beam_inputs")
                x = self.inputs
            else:
                self.inputs = tf1.placeholder(tf.int32, [K], name="sample_beam_input_ids")
                x = model.single_step_gates(self.inputs)
            states = [tf.concat(variables, axis=0) for variables in self.saved]
            output, new_states = model.cell_step(x, states)
            updates = [v.assign(new[k:k + 1]) for variables, new in zip(self.saved, new_states)
                       for k, v in enumerate(variables)]
            with tf.control_dependencies(updates):
                self.predictions = tf.nn.softmax(tf.matmul(output, model.w) + model.b)
            self.parents = tf1.placeholder(tf.int32, [K], name="best_neighbor_beam_indices")
            copies = []
            for variables in self.saved:
                parents_rows = tf.gather(tf.stack(variables), self.parents)          # [K, 1, H]
                copies += [v.assign(parents_rows[k]) for k, v in enumerate(variables)]
            self.update = tf.group(*copies)
            self.reset = tf.group(*[v.assign(tf.zeros_like(v)) for variables in self.saved for v in variables])
            self.init = tf1.variables_initializer([v for variables in self.saved for v in variables])

    def step(self, session, ids):
        """Feed one bigram id per beam; return the [K, V] next-bigram distributions (states updated)."""
        return session.run(self.predictions, self.model.ids_feed(self.inputs, ids))

    def keep(self, session, parents):
        session.run(self.update, {self.parents: np.asarray(parents, dtype=np.int32)})


def repeating_child(sequence, n):
    """The id that would make the last `n` ids of `sequence` + [id] repeat the `n` before them at once, or None."""
    length = len(sequence)
    if n < 1 or length < 2 * n - 1:
        return None
    if list(sequence[length - n + 1:]) != list(sequence[length - 2 * n + 1:length - n]):
        return None
    return sequence[length - n]


def refuse_repeats(scores, sequences, n):
    """`scores` [K, V] with the repeating child (repeating_child) of each row's sequence at -1 (a copy)."""
    scores = np.array(scores, dtype=np.float64)
    for row, sequence in enumerate(sequences):
        child = repeating_child(sequence, n)
        if child is not None:
            scores[row, child] = -1.0
    return scores


def beam_segment(session, beam, current, beam_length, rng, final="top3", book_quirks=False, no_repeat_ngram=None,
                 history=None, exclude=()):
    """One segment: `beam_length` bigram ids continuing from `current`. All beams share the root state.
    With `no_repeat_ngram`, `history` is the ids so far (the primer's included), ending with `current`. The ids in
    `exclude` are never proposed (the word notebooks keep UNK, id 0, out of their beams)."""
    K = beam.size
    root = beam.step(session, [current] * K)[0]
    if no_repeat_ngram:
        tail = list(history[-(2 * no_repeat_ngram - 1):])     # all that repeating_child reads
        ranked = refuse_repeats(root[None, :], [tail], no_repeat_ngram)[0]
    else:
        ranked = root
    if exclude:
        ranked = np.array(ranked)
        ranked[list(exclude)] = -1.0
    candidates = np.argsort(ranked)[::-1][:K]
    probabilities = root[candidates].astype(np.float64)
    sequences = [[int(c)] for c in candidates]
    parents = np.arange(K)
    for _ in range(beam_length - 1):
        children = beam.step(session, candidates).astype(np.float64)           # [K, V]
        scores = children if book_quirks else probabilities[:, None] * children
        if no_repeat_ngram:
            scores = refuse_repeats(scores, [tail + s for s in sequences], no_repeat_ngram)
        if exclude:
            scores = np.array(scores)
            scores[:, list(exclude)] = -1.0
        best = np.argsort(scores.ravel())[::-1][:K]
        parents, candidates = best // children.shape[1], best % children.shape[1]
        beam.keep(session, parents)
        probabilities = probabilities[parents] * children[parents, candidates]
        sequences = [sequences[p] + [int(c)] for p, c in zip(parents, candidates)]
    if final == "best":
        chosen = int(np.argmax(probabilities))
    else:
        top = np.argsort(probabilities)[-3:]
        chosen = int(rng.choice(top, p=probabilities[top] / probabilities[top].sum()))
    if book_quirks:
        chosen = int(parents[chosen])
    beam.keep(session, [chosen] * K)
    return sequences[chosen]


def beam_generate(session, model, prime_ids, length, beam_length, beam_neighbors, rng, final="top3",
                  book_quirks=False, no_repeat_ngram=None, beam=None, exclude=()):
    """`length // beam_length` segments after the primer; returns the generated ids. With `no_repeat_ngram`, no
    segment repeats the last that many bigrams (the primer's included) immediately. `beam`: a beam graph built
    before (any object with BeamGraph's `size`, `init`, `reset`, `step` and `keep`), else a BeamGraph of `model`
    is added to its graph; `exclude`: ids never proposed."""
    beam = beam or BeamGraph(model, min(beam_neighbors, model.vocabulary_size))
    session.run(beam.init)
    for bigram_id in prime_ids[:-1]:
        beam.step(session, [bigram_id] * beam.size)
    history = list(prime_ids)
    for _ in range(length // beam_length):
        history += beam_segment(session, beam, history[-1], beam_length, rng, final, book_quirks, no_repeat_ngram,
                                history, exclude=exclude)
    session.run(beam.reset)
    return history[len(prime_ids):]
