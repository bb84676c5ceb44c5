"""The book's `tf.compat.v1` graph (spec §4): train, valid and test subgraphs over saved-state variables.

Two ways to feed the same variables, chosen by `config.graph`:
- `faithful`: the book's graph as written: 2 x `num_unrollings` one-hot `[batch, V]` placeholders,
  every gate a one-hot matrix product.
- `fast`: integer ids; each gate's `x·Wx` is a row look-up of the same variables (one look-up into
  the gate matrices side by side), the hidden products one `[H, gates*H]` product; the unroll,
  output layer and loss of every cell have a hand-written backward pass laid out for both cores
  (the cell's `fast_language_model`), the gradient of the look-up a dense `unsorted_segment_sum`.
  Same numbers up to float rounding (tests check 1e-5), in both `state_variables` modes.

Randomness that the book drew from TensorFlow's stateful generators (dropout masks, the random
reset of the test state) comes from stateless ops seeded by fed counters, so a run restored from a
checkpoint draws exactly what the uninterrupted run would have drawn.
"""

import numpy as np
import tensorflow as tf

from reproduce.cells import CELLS, bias_variable, weight_variable
from reproduce.data import one_hot

tf1 = tf.compat.v1
tf1.disable_eager_execution()


class BookModel:
    """Builds the whole graph in `self.graph`; exposes the book's ops under the book's names."""

    def __init__(self, config, vocabulary_size):
        self.config = config
        self.vocabulary_size = V = vocabulary_size
        H, B = config.num_nodes, config.batch_size
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf1.set_random_seed(config.seed)
            # Variables first, in a fixed order with explicit seeds, so both graph paths start equal.
            cell = self.cell = CELLS[config.cell](self._input_width(), H, seed=1000)
            self.w = weight_variable("w", [H, V], cell.weight_stddev, seed=1)
            self.b = bias_variable("b", [V], *cell.bias_range, seed=2)
            self.train_state = self._state_variables("saved_", B)
            self.valid_state = self._state_variables("saved_valid_", 1)
            self.test_state = self._state_variables("saved_test_", 1)
            self.gstep = tf1.Variable(0, trainable=False, name="global_step")
            self._build_inputs()
            self._build_train()
            self._build_valid()
            self._build_test()
            self._build_optimizer()
            self._build_resets()
            self.init = tf1.global_variables_initializer()
            self.saved_variables = tf1.global_variables()    # weights, saved states, Adam slots, global_step
            self.saver = tf1.train.Saver(self.saved_variables, max_to_keep=None)

    def _input_width(self):
        """The rows of each gate's input matrix: one per bigram (a subclass reading word vectors: their width)."""
        return self.vocabulary_size

    def _state_variables(self, prefix, rows):
        """The saved output (and cell state) variables, of the kind `config.state_variables` names.

        TensorFlow 1 quirk, kept by default (`reference`): the book's `tf.Variable` is a reference
        variable, and the training loss sits under `control_dependencies` on the assigns of the saved
        state, so the whole backward pass runs after those assigns. A gradient op that reads a reference
        variable reads it when it runs, so the first unrolled step's terms that use the incoming state
        (`o·im`, `o·fm`, `o·cm`, `o·om`, `forget_gate * state`; the GRU's and the peepholes' alike) were
        computed with the state the unroll *ended* with. Resource variables (TF 2's default,
        `resource`) read a snapshot: the textbook gradient. The valid and test subgraphs compute their
        prediction from the step's output, not from the variable, so the kind changes nothing there.
        """
        if self.config.state_variables not in ("reference", "resource"):
            raise ValueError(f"unknown state_variables {self.config.state_variables!r}")
        use_resource = self.config.state_variables == "resource"
        return [tf1.Variable(tf.zeros([rows, self.config.num_nodes]), trainable=False, name=prefix + name,
                             use_resource=use_resource) for name in self.cell.state_names]

    # ---------------------------------------------------------------- inputs
    def _build_inputs(self):
        V, B, T = self.vocabulary_size, self.config.batch_size, self.config.num_unrollings
        if self.config.graph == "faithful":
            self.train_inputs = [tf1.placeholder(tf.float32, [B, V], name=f"train_inputs_{t}") for t in range(T)]
            self.train_labels = [tf1.placeholder(tf.float32, [B, V], name=f"train_labels_{t}") for t in range(T)]
            self.valid_inputs = tf1.placeholder(tf.float32, [1, V], name="valid_inputs")
            self.valid_labels = tf1.placeholder(tf.float32, [1, V], name="valid_labels")
            self.test_input = tf1.placeholder(tf.float32, [1, V], name="test_input")
        elif self.config.graph == "fast":
            self.train_inputs = tf1.placeholder(tf.int32, [T, B], name="train_input_ids")
            self.train_labels = tf1.placeholder(tf.int32, [T, B], name="train_label_ids")
            self.valid_inputs = tf1.placeholder(tf.int32, [1], name="valid_input_id")
            self.valid_labels = tf1.placeholder(tf.int32, [1], name="valid_label_id")
            self.test_input = tf1.placeholder(tf.int32, [1], name="test_input_id")
            weights, biases = self.cell.input_weights()
            self._fused_x = tf.concat(weights, axis=1, name="fused_x")
            self._fused_b = tf.concat(biases, axis=1, name="fused_b")
        else:
            raise ValueError(f"unknown graph {self.config.graph!r}")
        # [seed, iteration] for the dropout masks; [seed, counter] for the test-state reset.
        self.dropout_seed = tf1.placeholder_with_default(tf.constant([0, 0], tf.int64), [2], name="dropout_seed")
        self.reset_seed = tf1.placeholder_with_default(tf.constant([0, 0], tf.int64), [2], name="reset_seed")

    def single_step_gates(self, ids):
        """Every gate's `x·Wx + b` for a step of one or a few rows (valid, test, beam): a row look-up of each gate
        matrix, no [V, gates*H] copy."""
        weights, _ = self.cell.input_weights()
        return tf.concat([tf.gather(w, ids) for w in weights], axis=1) + self._fused_b

    def cell_step(self, x, states):
        """One cell step from an input of this path (one-hot rows, or precomputed gate inputs)."""
        if self.config.graph == "faithful":
            return self.cell.literal(x, states)
        return self.cell.fused(x, states)

    # ---------------------------------------------------------------- train
    def _build_train(self):
        c = self.config
        T, B, H = c.num_unrollings, c.batch_size, c.num_nodes
        masks = [None] * T
        if c.dropout > 0:
            # One [B, H] mask per step, each from its own stateless seed (the iteration's seed folded with the
            # step): the first step's is ready at once and the others are drawn beside the recurrence.
            for t in range(T):
                seed = tf.random.experimental.stateless_fold_in(self.dropout_seed, t)
                keep = tf.random.stateless_uniform([B, H], seed=seed) >= c.dropout
                masks[t] = tf.cast(keep, tf.float32) * (1.0 / (1.0 - c.dropout))
        self.dropout_masks = masks
        if c.graph == "fast":
            self._build_fast_train(masks)
        else:
            self._build_unrolled_train(masks)

    def _build_unrolled_train(self, masks):
        """The book's training subgraph as written (faithful graph): the unroll, `logits`, the loss, the perplexity."""
        c = self.config
        outputs, to_save = self._unroll(masks)
        self.logits = tf.matmul(outputs, self.w) + self.b
        self.train_prediction = tf.nn.softmax(self.logits)
        updates = [v.assign(s) for v, s in zip(self.train_state, to_save)]
        with tf.control_dependencies(updates):
            labels = tf.concat(self.train_labels, axis=0)
            self.loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=self.logits, labels=labels))
            nll = labels * -tf.math.log(self.train_prediction + 1e-10)
        # The book's perplexity: the mean of -log(p + 1e-10) of the true bigrams (exp() taken later).
        self.train_perplexity_without_exp = tf.reduce_sum(nll) / (c.num_unrollings * c.batch_size)

    def _build_fast_train(self, masks):
        """The fast path: unroll, output layer and loss in one piece with a hand-written backward pass
        (the cell's `fast_language_model`); the same tensors under the same names as `_build_unrolled_train`."""
        c = self.config
        table = self._fused_x + self._fused_b             # row k: every gate's x·Wx + b for bigram k
        states = [tf.identity(v) for v in self.train_state]
        forward = self.cell.fast_language_model(table, self.w, self.b, self.train_inputs, self.train_labels, states,
                                                masks, c.save_dropped_output,
                                                first_step_reads_final_state=c.state_variables == "reference")
        self.logits = tf.matmul(forward.outputs, self.w) + self.b          # computed only when fetched
        self.train_prediction = tf.nn.softmax(self.logits)
        updates = [v.assign(s) for v, s in zip(self.train_state, forward.saved_states)]
        with tf.control_dependencies(updates):
            self.loss = tf.identity(forward.loss)
            nll_sum = tf.identity(forward.nll_sum)
        self.train_perplexity_without_exp = nll_sum / (c.num_unrollings * c.batch_size)

    def _unroll(self, masks):
        """The book's unrolled loop over `num_unrollings` cell steps; returns ([T*B, H] outputs, states to save)."""
        c = self.config
        states = list(self.train_state)
        outputs = []
        for t in range(c.num_unrollings):
            output, states = self.cell_step(self.train_inputs[t], states)
            to_save = list(states)
            if masks[t] is not None:
                # Book's `output = tf.nn.dropout(output, keep_prob=1.0 - dropout)`: the dropped-out output
                # feeds the next step. Article/main-notebook quirk: it is also what gets saved; the
                # extensions notebook saved the output from before dropout (`save_dropped_output`).
                output = output * masks[t]
                states = (output,) + tuple(states[1:])
                if c.save_dropped_output:
                    to_save = list(states)
            outputs.append(output)
        return tf.concat(outputs, axis=0), to_save

    # ---------------------------------------------------------------- valid and test
    def _single_step(self, x, saved):
        x = x if self.config.graph == "faithful" else self.single_step_gates(x)
        output, states = self.cell_step(x, list(saved))
        updates = [v.assign(s) for v, s in zip(saved, states)]
        with tf.control_dependencies(updates):
            prediction = tf.nn.softmax(tf.matmul(output, self.w) + self.b)
        return prediction

    def _build_valid(self):
        self.valid_prediction = self._single_step(self.valid_inputs, self.valid_state)
        if self.config.graph == "faithful":
            nll = self.valid_labels * -tf.math.log(self.valid_prediction + 1e-10)
        else:
            nll = -tf.math.log(tf.gather(self.valid_prediction[0], self.valid_labels) + 1e-10)
        self.valid_perplexity_without_exp = tf.reduce_sum(nll)

    def _build_test(self):
        self.test_prediction = self._single_step(self.test_input, self.test_state)

    # ---------------------------------------------------------------- optimiser and resets
    def _build_optimizer(self):
        c = self.config
        self.learning_rate = tf1.train.exponential_decay(c.learning_rate, self.gstep, decay_steps=1,
                                                         decay_rate=c.decay_rate)
        optimizer = tf1.train.AdamOptimizer(self.learning_rate)
        gradients, variables = zip(*optimizer.compute_gradients(self.loss))
        gradients, _ = tf.clip_by_global_norm(gradients, c.clip_norm)
        # Running the optimizer alone also runs the saved-state assignments, as the book's graph did (there
        # through the loss's shape); the fast graph's hand-written gradients do not read the loss.
        with tf.control_dependencies([self.loss]):
            self.optimizer = optimizer.apply_gradients(zip(gradients, variables))
        self.inc_gstep = tf1.assign(self.gstep, self.gstep + 1)

    def _build_resets(self):
        self.reset_train_state = tf.group(*[v.assign(tf.zeros_like(v)) for v in self.train_state])
        self.reset_valid_state = tf.group(*[v.assign(tf.zeros_like(v)) for v in self.valid_state])
        # Book quirk: the test state is reset to noise, not zeros (stddev 0.05; 0.01 in the extensions).
        noise = tf.random.stateless_normal([len(self.test_state), 1, self.config.num_nodes], seed=self.reset_seed,
                                           stddev=self.config.test_reset_stddev)
        self.reset_test_state = tf.group(*[v.assign(noise[k]) for k, v in enumerate(self.test_state)])

    # ---------------------------------------------------------------- feeds
    def train_feed(self, inputs, labels, iteration):
        """Feed for one training iteration from [T, B] id arrays."""
        feed = {self.dropout_seed: [self.config.seed, iteration]}
        if self.config.graph == "faithful":
            inputs, labels = one_hot(inputs, self.vocabulary_size), one_hot(labels, self.vocabulary_size)
            feed.update(zip(self.train_inputs, inputs))
            feed.update(zip(self.train_labels, labels))
        else:
            feed[self.train_inputs] = inputs
            feed[self.train_labels] = labels
        return feed

    def ids_feed(self, placeholder, bigram_ids):
        """Feed for a single-step placeholder (valid, test, beam): one row per bigram id, as this path reads it."""
        if self.config.graph == "faithful":
            return {placeholder: one_hot(np.asarray(bigram_ids), self.vocabulary_size)}
        return {placeholder: np.asarray(bigram_ids, dtype=np.int32)}

    def valid_feed(self, input_id, label_id):
        return {**self.ids_feed(self.valid_inputs, [input_id]), **self.ids_feed(self.valid_labels, [label_id])}

    def test_feed(self, input_id):
        return self.ids_feed(self.test_input, [input_id])
