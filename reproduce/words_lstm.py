"""`book-words`: chapter 8's `lstm_word2vec.ipynb`, the book's LSTM with explicit `tf.compat.v1` variables
reading 128-d word vectors instead of one-hot bigrams: 128 units, batch 64, 50 unrollings, dropout 0.2, the
training state reset after every document, beam search of 20 words with 5 beams.

The graph is the bigram recipes' (model.BookModel, its fast path, cells.LSTMCell): each gate's input matrix
is [E, H] instead of [V, H], and its `x·Wx` rows are the word vectors times those matrices. The vectors are a
trainable variable, as the notebook's `tf.Variable(embed_init)`: they are fine-tuned with the LSTM.
The loop, checkpoints and generation are word_runs.py's.
"""
import tensorflow as tf

from reproduce import word_runs
from reproduce.beam import BeamGraph
from reproduce.classics import common
from reproduce.model import BookModel

tf1 = tf.compat.v1


class WordLSTMModel(BookModel):
    """BookModel over word vectors: `embeddings` [V, E] feed the gates."""

    def _input_width(self):
        self.embeddings = tf1.get_variable("embeddings", [self.vocabulary_size, self.config.embedding_size],
                                           initializer=tf1.zeros_initializer())      # loaded after init
        return self.config.embedding_size

    def _build_inputs(self):
        super()._build_inputs()
        # The fast path's table, row k every gate's x·Wx + b for word k: here the word's vector times the
        # gates' [E, 4H] input matrices (the gradient reaches both through the product).
        self._input_matrix = self._fused_x
        self._fused_x = tf.matmul(self.embeddings, self._input_matrix)

    def single_step_gates(self, ids):
        return tf.matmul(tf.gather(self.embeddings, ids), self._input_matrix) + self._fused_b

    def load_embeddings(self, session, vectors):
        with common.quiet_deprecations():
            self.embeddings.load(vectors, session)

    def current_learning_rate(self, session):
        return float(session.run(self.learning_rate))

    def beam_graph(self, size):
        """The notebook's per-beam state variables and ops (beam.BeamGraph), added to this graph."""
        return BeamGraph(self, size)

    def single_step(self):
        """(ids [rows], state placeholders [rows, H], output, new states): the step evaluate feeds, a story per row."""
        with self.graph.as_default(), tf1.name_scope("single_step"):
            ids = tf1.placeholder(tf.int32, [None], name="ids")
            states = [tf1.placeholder(tf.float32, [None, self.config.num_nodes]) for _ in self.cell.state_names]
            output, new_states = self.cell.fused(self.single_step_gates(ids), states)
            return ids, states, output, list(new_states)


def build(config, vocabulary_size):
    return WordLSTMModel(config, vocabulary_size)


train, generate = word_runs.recipe_commands(build)
