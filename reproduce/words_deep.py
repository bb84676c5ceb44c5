"""`book-words-deep`: chapter 8's `lstm_word2vec_rnn_api.ipynb`, a deep LSTM through TensorFlow's RNN API.

Kept from the notebook, on purpose:
- a `MultiRNNCell` of three `LSTMCell`s [64, 48, 32], each in a `DropoutWrapper` (output keep 0.8,
  `variational_recurrent=True`: one [1, units] mask per layer for the whole batch and all 50 steps of an
  iteration), run by `dynamic_rnn` time-major over the word vectors (trainable, fine-tuned); the recipe trains
  the same maths with one fused op a layer (below);
- the loss `tf.contrib.seq2seq.sequence_loss` computed with `average_across_timesteps=False,
  average_across_batch=True` and then summed over time (contrib is gone: `sequence_loss` mirrors it);
- every training iteration and every validation word starts from a zero state (the notebook keeps no state
  between `session.run`s; its valid perplexity is therefore that of one word without context);
- the loop feeds the learning rate 0.0005 over the decayed schedule (`fed_learning_rate`, word_runs.py);
- generation: the notebook's beam search, 5 beams of 5 words, UNK never proposed, one of the 3 best beams drawn.
The dropout masks' uniform noise is drawn in numpy from (seed, iteration) and fed at every iteration, so a
resumed run draws what the uninterrupted run drew.

Two builds of the training iteration over the same variables, chosen by `config.graph`:
- `faithful`: the notebook's graph as written: `dynamic_rnn` over the MultiRNNCell of DropoutWrappers;
- `fast` (the recipe's): each layer one `BlockLSTM` op over the 50 steps, TensorFlow's fused LSTM kernel forward
  and backward, on the LSTMCell's own kernel and bias (the same gates in the same order, forget bias 1), its
  outputs times the layer's [1, units] mask as the DropoutWrapper computes it; the loss and perplexity from one
  cross-entropy of the [T * B, V] logits, without the two [T, B, V] transposes or a second softmax. No `while`
  loop: most of the ops of an iteration of `dynamic_rnn` are its control flow, per step and layer.
Same numbers up to float rounding (tests/test_word_recipes.py holds losses and variables to 1e-6); checkpoints
are shared. The valid subgraph, the beam search and `single_step` call the LSTMCells as the notebook did.
"""
import numpy as np
import tensorflow as tf

from reproduce import word_runs
from reproduce.classics import common

tf1 = tf.compat.v1


def sequence_loss(logits, targets, weights):
    """What `tf.contrib.seq2seq.sequence_loss(logits, targets, weights, average_across_timesteps=False,
    average_across_batch=True)` computed, mirrored by hand: logits [B, T, V], targets and weights [B, T];
    per time step the weighted mean over the batch of the softmax cross-entropy (the weights' sum plus 1e-12
    as divisor, as contrib did), [T]."""
    crossent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits) * weights
    return tf.reduce_sum(crossent, axis=0) / (tf.reduce_sum(weights, axis=0) + 1e-12)


class DeepWordModel:
    """The notebook's graph in `self.graph`, its ops under the names the word loop reads."""

    def __init__(self, config, vocabulary_size):
        c = self.config = config
        self.vocabulary_size = V = vocabulary_size
        self.sizes = sizes = word_runs.layer_sizes(c.layer_nodes)
        T, B, E = c.num_unrollings, c.batch_size, c.embedding_size
        self.graph = tf.Graph()
        with self.graph.as_default(), common.quiet_deprecations(), common.seeded_initializer():
            tf1.set_random_seed(c.seed)
            self.train_inputs = tf1.placeholder(tf.int32, [T, B], name="train_inputs")
            self.train_labels = tf1.placeholder(tf.int32, [T, B], name="train_labels")
            self.valid_inputs = tf1.placeholder(tf.int32, [1], name="valid_inputs")
            self.valid_labels = tf1.placeholder(tf.int32, [1], name="valid_labels")
            self.embeddings = tf1.get_variable("embeddings", [V, E], initializer=tf1.zeros_initializer())
            self.w = tf1.Variable(tf1.truncated_normal([sizes[-1], V], stddev=0.01, seed=1), name="w")
            self.b = tf1.Variable(tf1.random_uniform([V], 0.0, 0.01, seed=2), name="b")
            self.cells = [tf1.nn.rnn_cell.LSTMCell(n) for n in sizes]
            self._build_cells(E)
            self.stacked = tf1.nn.rnn_cell.MultiRNNCell(self.cells)          # valid and generation: no dropout
            if c.graph == "faithful":
                self._build_notebook_train()
            elif c.graph == "fast":
                self._build_fused_train()
            else:
                raise ValueError(f"unknown graph {c.graph!r}")
            self._build_valid()
            self._build_optimizer()
            self.reset_valid_state = tf.no_op()            # nothing to reset: every valid word starts from zeros
            self.reset_train_state = tf.no_op()
            self.init = tf1.global_variables_initializer()

    def _build_cells(self, input_width):
        """The LSTMCells' variables, under the names `dynamic_rnn` gives them (rnn/multi_rnn_cell/cell_k/lstm_cell/),
        made before either training build so that both draw the same initial values from the graph's seed."""
        with tf1.variable_scope("rnn"), tf1.variable_scope("multi_rnn_cell"):
            for k, cell in enumerate(self.cells):
                with tf1.variable_scope(f"cell_{k}"):
                    cell.build(tf.TensorShape([None, input_width]))
                input_width = cell.output_size

    def _build_notebook_train(self):
        """The notebook's training graph (`graph` faithful): dynamic_rnn over the MultiRNNCell of DropoutWrappers."""
        c = self.config
        T, B, E = c.num_unrollings, c.batch_size, c.embedding_size
        dropped = [tf1.nn.rnn_cell.DropoutWrapper(cell, input_keep_prob=1.0, output_keep_prob=1.0 - c.dropout,
                                                  state_keep_prob=1.0, variational_recurrent=True,
                                                  input_size=tf.TensorShape([E]), dtype=tf.float32)
                   for cell in self.cells]
        # The wrappers' [1, units] uniform noise: fed at every iteration (train_feed).
        self.dropout_noise = [wrapper._recurrent_output_noise for wrapper in dropped]
        stacked_dropout = tf1.nn.rnn_cell.MultiRNNCell(dropped)
        embedded = tf.nn.embedding_lookup(self.embeddings, self.train_inputs)          # [T, B, E]
        outputs, _ = tf1.nn.dynamic_rnn(stacked_dropout, embedded, time_major=True,
                                        initial_state=stacked_dropout.zero_state(B, tf.float32))
        logits = tf.matmul(tf.reshape(outputs, [-1, self.sizes[-1]]), self.w) + self.b          # [T * B, V]
        time_major_logits = tf.reshape(logits, [T, B, -1])
        # The notebook's loss: the batch mean of each step's cross-entropy, summed over the 50 steps.
        self.loss = tf.reduce_sum(sequence_loss(tf.transpose(time_major_logits, [1, 0, 2]),
                                                tf.transpose(self.train_labels), tf.ones([B, T], tf.float32)))
        prediction = tf.nn.softmax(logits)
        self._build_train_perplexity(tf.gather(prediction, tf.reshape(self.train_labels, [-1]), batch_dims=1))

    def _build_fused_train(self):
        """The training iteration with one BlockLSTM op a layer (`graph` fast, the module's docstring): the same
        numbers as `_build_notebook_train` up to float rounding."""
        c = self.config
        T, B = c.num_unrollings, c.batch_size
        keep = 1.0 - c.dropout
        layer = tf.nn.embedding_lookup(self.embeddings, self.train_inputs)             # [T, B, E]
        self.dropout_noise = []
        for k, (cell, units) in enumerate(zip(self.cells, self.sizes)):
            kernel, bias = cell.weights
            zeros, no_peephole = tf.zeros([B, units]), tf.zeros([units])
            layer = tf.raw_ops.BlockLSTM(seq_len_max=tf.constant(T, tf.int64), x=layer, cs_prev=zeros, h_prev=zeros,
                                         w=kernel, wci=no_peephole, wcf=no_peephole, wco=no_peephole, b=bias,
                                         forget_bias=1.0, cell_clip=-1.0, use_peephole=False).h     # [T, B, units]
            if c.dropout > 0:
                # The DropoutWrapper's variational dropout: output / keep * floor(keep + noise), noise [1, units].
                noise = tf1.placeholder(tf.float32, [1, units], name=f"dropout_noise_{k}")
                self.dropout_noise.append(noise)
                layer = layer / keep * tf.floor(keep + noise)
        logits = tf.matmul(tf.reshape(layer, [-1, self.sizes[-1]]), self.w) + self.b              # [T * B, V]
        # sequence_loss's maths on the [T * B, V] logits as they come: its cross-entropy kernel is faster on
        # 2-d logits than on the [T, B, V] view of them.
        crossent = tf.reshape(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.reshape(self.train_labels, [-1]), logits=logits), [T, B])
        self.loss = tf.reduce_sum(tf.reduce_sum(crossent, axis=1) / (B + 1e-12))
        # The true words' probabilities, exp(-cross-entropy), without a second softmax over the logits.
        self._build_train_perplexity(tf.exp(-tf.reshape(crossent, [-1])))

    def _build_train_perplexity(self, picked):
        """From `picked` [T * B], the probability the model gave each true word."""
        T, B = self.config.num_unrollings, self.config.batch_size
        # The book's perplexity: the mean of -log(p + 1e-10) of the true words (exp() taken later).
        self.train_perplexity_without_exp = tf.reduce_sum(-tf.math.log(picked + 1e-10)) / (T * B)

    def _build_valid(self):
        embedded = tf.expand_dims(tf.nn.embedding_lookup(self.embeddings, self.valid_inputs), 0)     # [1, 1, E]
        outputs, _ = tf1.nn.dynamic_rnn(self.stacked, embedded, time_major=True,
                                        initial_state=self.stacked.zero_state(1, tf.float32))
        prediction = tf.nn.softmax(tf.matmul(tf.reshape(outputs, [-1, self.sizes[-1]]), self.w) + self.b)
        self.valid_perplexity_without_exp = tf.reduce_sum(
            -tf.math.log(tf.gather(prediction[0], self.valid_labels) + 1e-10))

    def _build_optimizer(self):
        c = self.config
        self.gstep = tf1.Variable(0, trainable=False, name="global_step")
        decayed = tf1.train.exponential_decay(c.learning_rate, self.gstep, decay_steps=1, decay_rate=c.decay_rate)
        # The notebook fed `tf_learning_rate` at every iteration; a fed value overrides the schedule here too.
        self.learning_rate = tf1.placeholder_with_default(decayed, [], name="learning_rate")
        optimizer = tf1.train.AdamOptimizer(self.learning_rate)
        gradients, variables = zip(*optimizer.compute_gradients(self.loss))
        gradients, _ = tf.clip_by_global_norm(gradients, c.clip_norm)
        self.optimizer = optimizer.apply_gradients(zip(gradients, variables))
        self.inc_gstep = tf1.assign(self.gstep, self.gstep + 1)

    # ---------------------------------------------------------------- feeds and loop hooks
    def train_feed(self, inputs, labels, iteration):
        """Feed for one iteration from [T, B] id arrays: the fed learning rate and this iteration's masks."""
        feed = {self.train_inputs: inputs, self.train_labels: labels}
        if self.config.fed_learning_rate > 0:
            feed[self.learning_rate] = self.config.fed_learning_rate
        if self.config.dropout > 0:
            noise = np.random.default_rng([self.config.seed, iteration])
            feed.update({tensor: noise.random([1, n], dtype=np.float32)
                         for tensor, n in zip(self.dropout_noise, self.sizes)})
        return feed

    def valid_feed(self, input_id, label_id):
        return {self.valid_inputs: [input_id], self.valid_labels: [label_id]}

    def current_learning_rate(self, session):
        if self.config.fed_learning_rate > 0:
            return self.config.fed_learning_rate
        return float(session.run(self.learning_rate))

    def load_embeddings(self, session, vectors):
        with common.quiet_deprecations():
            self.embeddings.load(vectors, session)

    def beam_graph(self, size):
        return DeepBeamGraph(self, size)

    def stacked_step(self, ids, states):
        """One step of the stacked cells (no dropout) from word `ids`: `states` lists each layer's output and cell
        state, bottom first; returns (the top output, the new states listed alike). Each cell's `.call`, as the
        notebook called its MultiRNNCell's: a legacy cell's `__call__` after the two `dynamic_rnn`s would build
        the step inside the graph of the last while loop it ran in."""
        output, new_states = tf.nn.embedding_lookup(self.embeddings, ids), []
        for cell, (h, c) in zip(self.cells, zip(states[::2], states[1::2])):
            output, layer = cell.call(output, tf1.nn.rnn_cell.LSTMStateTuple(c=c, h=h))
            new_states += [layer.h, layer.c]
        return output, new_states

    def single_step(self):
        """(ids [rows], state placeholders [rows, units] as stacked_step lists them, top output, new states):
        the step evaluate feeds, a story per row."""
        with self.graph.as_default(), tf1.name_scope("single_step"):
            ids = tf1.placeholder(tf.int32, [None], name="ids")
            states = [tf1.placeholder(tf.float32, [None, n]) for n in self.sizes for _ in ("output", "state")]
            return (ids, states, *self.stacked_step(ids, states))


class DeepBeamGraph:
    """The notebook's beam variables and ops (beam.BeamGraph's interface): each layer's output and cell state for
    `size` beams, stepped together through the stacked cells without dropout; not part of checkpoints."""

    def __init__(self, model, size):
        self.model, self.size = model, size
        with model.graph.as_default(), common.quiet_deprecations(), tf1.name_scope("beam"):
            self.saved = [(tf1.Variable(tf.zeros([size, n]), trainable=False, name=f"beam_output_{k}"),
                           tf1.Variable(tf.zeros([size, n]), trainable=False, name=f"beam_state_{k}"))
                          for k, n in enumerate(model.sizes)]
            self.inputs = tf1.placeholder(tf.int32, [size], name="beam_inputs")
            output, new_states = model.stacked_step(self.inputs, [v for pair in self.saved for v in pair])
            updates = [v.assign(new) for pair, new_pair in zip(self.saved, zip(new_states[::2], new_states[1::2]))
                       for v, new in zip(pair, new_pair)]
            with tf.control_dependencies(updates):
                self.predictions = tf.nn.softmax(tf.matmul(output, model.w) + model.b)
            self.parents = tf1.placeholder(tf.int32, [size], name="beam_parents")
            variables = [v for pair in self.saved for v in pair]
            self.update = tf.group(*[v.assign(tf.gather(v, self.parents)) for v in variables])
            self.reset = tf.group(*[v.assign(tf.zeros_like(v)) for v in variables])
            self.init = tf1.variables_initializer(variables)

    def step(self, session, ids):
        """Feed one word id per beam; the [size, V] next-word distributions (the states updated)."""
        return session.run(self.predictions, {self.inputs: np.asarray(ids, dtype=np.int32)})

    def keep(self, session, parents):
        session.run(self.update, {self.parents: np.asarray(parents, dtype=np.int32)})


def build(config, vocabulary_size):
    return DeepWordModel(config, vocabulary_size)


train, generate = word_runs.recipe_commands(build)
