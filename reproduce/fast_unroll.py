"""The fast graph's training iteration of the book's cells (LSTM, peephole LSTM, GRU): unroll, output
layer and loss, with a hand-written backward pass laid out so that both cores stay busy. Each cell
names its pass as `fast_language_model` (cells.py).

Same mathematics as the autodiff of the cell's `fused` step (cells.py) over `num_unrollings` steps
followed by the book's `logits = outputs·w + b` and mean softmax cross-entropy (the equivalence tests
hold both to the book's literal graph, in both `state_variables` modes). What makes it fast:

- The recurrence is a serial chain of small ops (per step one `[B, H] x [H, 4H]` product and the
  gate arithmetic). Everything else — the output layer, the softmax, the loss gradient and the
  weight gradients — is cut into chunks of a few time steps, each of which depends only on the
  steps it covers. TensorFlow's executor runs a chunk's work on the other core as soon as its steps
  are done (forward) or their gradients are known (backward), while the chain goes on: with one
  thread per op (`session.session_config`) the two cores overlap instead of taking turns.
- The backward pass of each step's gate arithmetic is TensorFlow's `LSTMBlockCellGrad` kernel (one
  op instead of about fifteen): given the step's gates it returns the gradient of the gate
  pre-activations, laid out i, c, f, o (the order of `LSTMCell.fused_order`), and of the previous
  cell state. It is handed no input columns (`x` of width 0, so `w` is just the hidden matrix). Its
  peepholes are the extensions notebook's: the input and forget gates look at the previous cell
  state, the output gate at the new one (`PeepholeLSTMCell`); it returns their gradients too.
- The GRU's step backward is a dozen elementwise ops and two products, written out below.
- The loss gradient is `(softmax - one_hot) / N`, from the softmax the book's perplexity needs
  anyway (TensorFlow's fused sparse cross-entropy kernel is slower here).
"""
import collections

import tensorflow as tf

Forward = collections.namedtuple("Forward", "loss nll_sum outputs saved_states")


def _running_sum(total, term):
    return term if total is None else total + term


def _chunks(ids, labels, chunk_steps):
    """The unroll cut into chunks of `chunk_steps` time steps: their ranges, flattened ids and labels."""
    T = ids.shape[0]
    chunks = [range(start, min(start + chunk_steps, T)) for start in range(0, T, chunk_steps)]
    return (chunks, [tf.reshape(ids[c.start:c.stop], [-1]) for c in chunks],
            [tf.reshape(labels[c.start:c.stop], [-1]) for c in chunks])


class _OutputLayer:
    """`logits = outputs·w + b`, the softmax, the loss and the book's perplexity sum, chunk by chunk (each chunk
    runs beside the recurrence of the later steps), and their backward pass."""

    def __init__(self, outputs, chunks, chunk_labels, w, b):
        self.chunks, self.chunk_labels, self.w = chunks, chunk_labels, w
        self.count = len(outputs) * outputs[0].shape[0]
        self.rows, self.softmax = [], []
        loss_sum = nll_sum = None
        for chunk, chunk_label in zip(chunks, chunk_labels):
            rows = tf.concat(outputs[chunk.start:chunk.stop], axis=0)
            softmax = tf.nn.softmax(tf.matmul(rows, w) + b)
            picked = tf.gather(softmax, chunk_label, batch_dims=1)
            # -log softmax[label]: the book's cross-entropy up to float rounding (it is only reported; the
            # gradient below is exact), without a second exponential over the [rows, V] logits.
            loss_sum = _running_sum(loss_sum, tf.reduce_sum(-tf.math.log(picked)))
            nll_sum = _running_sum(nll_sum, tf.reduce_sum(-tf.math.log(picked + 1e-10)))  # the book's perplexity
            self.rows.append(rows)
            self.softmax.append(softmax)
        self.loss, self.nll_sum = loss_sum / self.count, nll_sum

    def backward(self, d_loss):
        """(d_outputs per step, d_w, d_b) for the gradient `d_loss` of the mean loss."""
        scale = d_loss / self.count
        d_w = d_b = None
        d_outputs = [None] * sum(len(chunk) for chunk in self.chunks)
        for chunk, rows, softmax, chunk_label in zip(self.chunks, self.rows, self.softmax, self.chunk_labels):
            d_logits = (softmax - tf.one_hot(chunk_label, tf.shape(softmax)[1])) * scale
            d_w = _running_sum(d_w, tf.matmul(rows, d_logits, transpose_a=True))
            d_b = _running_sum(d_b, tf.reduce_sum(d_logits, axis=0))
            d_outputs[chunk.start:chunk.stop] = tf.split(tf.matmul(d_logits, self.w, transpose_b=True),
                                                         len(chunk), axis=0)
        return d_outputs, d_w, d_b


def lstm_language_model(table, hidden, w, b, ids, labels, h0, c0, masks, save_dropped_output,
                        first_step_reads_final_state=True, peepholes=None, chunk_steps=5):
    """One training pass of the book's LSTM language model over `ids` [T, B] with `labels` [T, B].

    `table`: [V, 4H], each row the gates' `x·Wx + b` for that bigram (a one-hot `x` picks one row).
    `hidden`: [H, 4H], the gates' hidden-state matrices side by side; `w` [H, V], `b` [V]: the
    output layer. `h0`, `c0`: [B, H] starting state (not differentiated: the book's saved state is
    not trainable). `masks`: for each step a [B, H] dropout mask (already scaled) or None.
    `peepholes`: None (the book's LSTM) or the peephole LSTM's `(ic, fc, oc)`, each [1, H].

    Returns `Forward`: the mean cross-entropy `loss`; `nll_sum`, the sum over all T*B bigrams of the
    book's `-log(p + 1e-10)`; `outputs` [T*B, H] after dropout (for `logits` on demand); `saved_states`,
    the output to save and the final cell state. Only `loss` has a gradient.

    `first_step_reads_final_state`: TensorFlow 1's reference-variable semantics (model.py,
    `BookModel._state_variables`): the first step's gradient terms that read the incoming state
    (`h0` in the hidden-matrix gradient, `c0` in the forget gate's and the peepholes') take the saved
    output and final cell state instead, as the book's graph computed them after its saved-state assigns.
    """
    B, H = ids.shape[1], hidden.shape[0]
    chunks, chunk_ids, chunk_labels = _chunks(ids, labels, chunk_steps)
    use_peephole = peepholes is not None

    @tf.custom_gradient
    def language_model(table, hidden, w, b, *peephole_weights):
        wci, wcf, wco = (tf.reshape(p, [-1]) for p in peephole_weights) if use_peephole else (None,) * 3
        h, c = h0, c0
        inputs_h, inputs_c, gates_of_step, outputs = [], [], [], []
        for chunk, chunk_id in zip(chunks, chunk_ids):    # each chunk's rows looked up when it starts
            for x in tf.split(tf.gather(table, chunk_id), len(chunk)):
                inputs_h.append(h)
                inputs_c.append(c)
                gates = x + tf.matmul(h, hidden)
                if use_peephole:
                    i_in, u_in, f_in, o_in = tf.split(gates, 4, axis=1)
                    i, f, u = tf.sigmoid(i_in + c * wci), tf.sigmoid(f_in + c * wcf), tf.tanh(u_in)
                    c = f * c + i * u
                    o = tf.sigmoid(o_in + c * wco)
                else:
                    i, _, f, o = tf.split(tf.sigmoid(gates), 4, axis=1)
                    u = tf.tanh(tf.split(gates, 4, axis=1)[1])
                    c = f * c + i * u
                tanh_c = tf.tanh(c)
                h_before_dropout = o * tanh_c
                mask = masks[len(outputs)]
                h = h_before_dropout if mask is None else h_before_dropout * mask
                gates_of_step.append(dict(i=i, cs=c, f=f, o=o, ci=u, co=tanh_c))
                outputs.append(h)
        saved_output = h if save_dropped_output else h_before_dropout
        if first_step_reads_final_state:          # the book's quirk: see the docstring
            inputs_h[0], inputs_c[0] = saved_output, c
        output_layer = _OutputLayer(outputs, chunks, chunk_labels, w, b)

        def grad(d_loss, *unused):
            # Only the loss is differentiated; the other outputs feed assignments and reports.
            d_outputs, d_w, d_b = output_layer.backward(d_loss)
            no_input, no_peephole, no_bias = tf.zeros([B, 0]), tf.zeros([H]), tf.zeros([4 * H])
            peephole_args = dict(wci=wci, wcf=wcf, wco=wco) if use_peephole else \
                dict(wci=no_peephole, wcf=no_peephole, wco=no_peephole)
            d_peepholes = [None] * 3
            d_c = tf.zeros([B, H])                        # the final state only feeds the saved state
            d_h_next = None
            d_gates = [None] * len(outputs)
            d_table = d_hidden = None
            for chunk, chunk_id in zip(reversed(chunks), reversed(chunk_ids)):
                for t in reversed(chunk):
                    d_h = d_outputs[t] if d_h_next is None else d_outputs[t] + d_h_next
                    if masks[t] is not None:
                        d_h = d_h * masks[t]
                    step = tf.raw_ops.LSTMBlockCellGrad(
                        x=no_input, cs_prev=inputs_c[t], h_prev=inputs_h[t], w=hidden, **peephole_args, b=no_bias,
                        **gates_of_step[t], cs_grad=d_c, h_grad=d_h, use_peephole=use_peephole)
                    d_gates[t], d_c = step.dicfo, step.cs_prev_grad
                    if use_peephole:
                        d_peepholes = [_running_sum(total, term) for total, term in
                                       zip(d_peepholes, (step.wci_grad, step.wcf_grad, step.wco_grad))]
                    if t > 0:
                        d_h_next = tf.matmul(d_gates[t], hidden, transpose_b=True)
                # This chunk's share of the weight gradients, beside the chain's earlier steps.
                d_chunk_gates = tf.concat(d_gates[chunk.start:chunk.stop], axis=0)
                d_table = _running_sum(d_table, tf.math.unsorted_segment_sum(d_chunk_gates, chunk_id,
                                                                             tf.shape(table)[0]))
                d_hidden = _running_sum(d_hidden, tf.matmul(tf.concat(inputs_h[chunk.start:chunk.stop], axis=0),
                                                            d_chunk_gates, transpose_a=True))
            d_peephole_weights = [tf.reshape(d, [1, H]) for d in d_peepholes] if use_peephole else []
            return (d_table, d_hidden, d_w, d_b, *d_peephole_weights)

        return (output_layer.loss, output_layer.nll_sum, tf.concat(outputs, axis=0), saved_output, c), grad

    loss, nll_sum, outputs, *saved_states = language_model(table, hidden, w, b, *(peepholes or ()))
    return Forward(loss, nll_sum, outputs, tuple(saved_states))


def gru_language_model(table, hidden_rz, hidden_h, w, b, ids, labels, h0, masks, save_dropped_output,
                       first_step_reads_final_state=True, chunk_steps=5):
    """`lstm_language_model` for the extensions notebook's GRU (`GRUCell.fused`).

    `table`: [V, 3H], each row the reset, update and candidate gates' `x·Wx + b` (`GRUCell.fused_order`);
    `hidden_rz`: [H, 2H], `rh` and `zh` side by side; `hidden_h`: [H, H], `hh`. The GRU carries only its
    output: `Forward.saved_states` holds the output to save alone. With `first_step_reads_final_state`, the
    first step's terms that read the incoming output (`o·rh` and `o·zh` in their matrices' gradients,
    `r * o` in the reset gate's, `(1 - z) * o` in the update gate's) take the saved output, as the book's
    graph did.
    """
    H = hidden_h.shape[0]
    chunks, chunk_ids, chunk_labels = _chunks(ids, labels, chunk_steps)

    @tf.custom_gradient
    def language_model(table, hidden_rz, hidden_h, w, b):
        h = h0
        steps, outputs = [], []
        for chunk, chunk_id in zip(chunks, chunk_ids):
            for x in tf.split(tf.gather(table, chunk_id), len(chunk)):
                reset_gate, update_gate = tf.split(tf.sigmoid(x[:, :2 * H] + tf.matmul(h, hidden_rz)), 2, axis=1)
                reset_h = reset_gate * h
                candidate = tf.tanh(x[:, 2 * H:] + tf.matmul(reset_h, hidden_h))
                h_before_dropout = (1 - update_gate) * h + update_gate * candidate
                steps.append(dict(h_read=h, r=reset_gate, z=update_gate, reset_h=reset_h, candidate=candidate))
                mask = masks[len(outputs)]
                h = h_before_dropout if mask is None else h_before_dropout * mask
                outputs.append(h)
        saved_output = h if save_dropped_output else h_before_dropout
        if first_step_reads_final_state:          # the book's quirk: see the docstring
            steps[0]["h_read"] = saved_output
        output_layer = _OutputLayer(outputs, chunks, chunk_labels, w, b)

        def grad(d_loss, *unused):
            d_outputs, d_w, d_b = output_layer.backward(d_loss)
            d_h_next = None
            d_rz, d_candidate, d_x = [None] * len(outputs), [None] * len(outputs), [None] * len(outputs)
            d_table = d_hidden_rz = d_hidden_h = None
            for chunk, chunk_id in zip(reversed(chunks), reversed(chunk_ids)):
                for t in reversed(chunk):
                    s = steps[t]
                    d_h = d_outputs[t] if d_h_next is None else d_outputs[t] + d_h_next
                    if masks[t] is not None:
                        d_h = d_h * masks[t]
                    d_candidate[t] = d_h * s["z"] * (1 - s["candidate"] * s["candidate"])
                    d_update = d_h * (s["candidate"] - s["h_read"]) * s["z"] * (1 - s["z"])
                    d_reset_h = tf.matmul(d_candidate[t], hidden_h, transpose_b=True)
                    d_reset = d_reset_h * s["h_read"] * s["r"] * (1 - s["r"])
                    d_rz[t] = tf.concat([d_reset, d_update], axis=1)
                    d_x[t] = tf.concat([d_rz[t], d_candidate[t]], axis=1)
                    if t > 0:
                        d_h_next = (d_h * (1 - s["z"]) + d_reset_h * s["r"]
                                    + tf.matmul(d_rz[t], hidden_rz, transpose_b=True))
                # This chunk's share of the weight gradients, beside the chain's earlier steps.
                span = slice(chunk.start, chunk.stop)
                d_table = _running_sum(d_table, tf.math.unsorted_segment_sum(
                    tf.concat(d_x[span], axis=0), chunk_id, tf.shape(table)[0]))
                d_hidden_rz = _running_sum(d_hidden_rz, tf.matmul(
                    tf.concat([s["h_read"] for s in steps[span]], axis=0), tf.concat(d_rz[span], axis=0),
                    transpose_a=True))
                d_hidden_h = _running_sum(d_hidden_h, tf.matmul(
                    tf.concat([s["reset_h"] for s in steps[span]], axis=0), tf.concat(d_candidate[span], axis=0),
                    transpose_a=True))
            return d_table, d_hidden_rz, d_hidden_h, d_w, d_b

        return (output_layer.loss, output_layer.nll_sum, tf.concat(outputs, axis=0), saved_output), grad

    loss, nll_sum, outputs, saved_output = language_model(table, hidden_rz, hidden_h, w, b)
    return Forward(loss, nll_sum, outputs, (saved_output,))
