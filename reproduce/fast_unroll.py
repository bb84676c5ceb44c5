"""The fast graph's training iteration of the book's LSTM: unroll, output layer and loss, with a
hand-written backward pass laid out so that both cores stay busy.

Same mathematics as the autodiff of `LSTMCell.fused` over `num_unrollings` steps followed by the
book's `logits = outputs·w + b` and mean softmax cross-entropy (the equivalence tests hold both to
the book's literal graph within 1e-5). What makes it fast:

- The recurrence is a serial chain of small ops (per step one `[B, H] x [H, 4H]` product and the
  gate arithmetic). Everything else — the output layer, the softmax, the loss gradient and the
  weight gradients — is cut into chunks of a few time steps, each of which depends only on the
  steps it covers. TensorFlow's executor runs a chunk's work on the other core as soon as its steps
  are done (forward) or their gradients are known (backward), while the chain goes on: with one
  thread per op (`model.session_config`) the two cores overlap instead of taking turns.
- The backward pass of each step's gate arithmetic is TensorFlow's `LSTMBlockCellGrad` kernel (one
  op instead of about fifteen): given the step's gates it returns the gradient of the gate
  pre-activations, laid out i, c, f, o (the order of `LSTMCell.fused_order`), and of the previous
  cell state. It is handed no input columns (`x` of width 0, so `w` is just the hidden matrix) and
  no peepholes.
- The loss gradient is `(softmax - one_hot) / N`, from the softmax the book's perplexity needs
  anyway (TensorFlow's fused sparse cross-entropy kernel is slower here).
"""
import collections

import tensorflow as tf

Forward = collections.namedtuple("Forward", "loss nll_sum outputs saved_output state")


def _running_sum(total, term):
    return term if total is None else total + term


def lstm_language_model(table, hidden, w, b, ids, labels, h0, c0, masks, save_dropped_output,
                        first_step_reads_final_state=True, chunk_steps=5):
    """One training pass of the book's LSTM language model over `ids` [T, B] with `labels` [T, B].

    `table`: [V, 4H], each row the gates' `x·Wx + b` for that bigram (a one-hot `x` picks one row).
    `hidden`: [H, 4H], the gates' hidden-state matrices side by side; `w` [H, V], `b` [V]: the
    output layer. `h0`, `c0`: [B, H] starting state (not differentiated: the book's saved state is
    not trainable). `masks`: for each step a [B, H] dropout mask (already scaled) or None.

    Returns `Forward`: the mean cross-entropy `loss`; `nll_sum`, the sum over all T*B bigrams of the
    book's `-log(p + 1e-10)`; `outputs` [T*B, H] after dropout (for `logits` on demand); the
    output to save and the final cell state. Only `loss` has a gradient.

    `first_step_reads_final_state`: TensorFlow 1's reference-variable semantics (model.py,
    `BookModel._state_variables`): the first step's gradient terms that read the incoming state
    (`h0` in the hidden-matrix gradient, `c0` in the forget gate's) take the saved output and final
    cell state instead, as the book's graph computed them after its saved-state assigns.
    """
    T, B = ids.shape
    H = hidden.shape[0]
    chunks = [range(start, min(start + chunk_steps, T)) for start in range(0, T, chunk_steps)]
    chunk_ids = [tf.reshape(ids[c.start:c.stop], [-1]) for c in chunks]
    chunk_labels = [tf.reshape(labels[c.start:c.stop], [-1]) for c in chunks]

    @tf.custom_gradient
    def language_model(table, hidden, w, b):
        h, c = h0, c0
        inputs_h, inputs_c, gates_of_step, outputs = [], [], [], []
        for chunk, chunk_id in zip(chunks, chunk_ids):    # each chunk's rows looked up when it starts
            for x in tf.split(tf.gather(table, chunk_id), len(chunk)):
                inputs_h.append(h)
                inputs_c.append(c)
                gates = x + tf.matmul(h, hidden)
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

        # The output layer, chunk by chunk: each runs beside the recurrence of the later steps.
        chunk_rows, chunk_softmax = [], []
        loss_sum = nll_sum = None
        for chunk, chunk_label in zip(chunks, chunk_labels):
            rows = tf.concat(outputs[chunk.start:chunk.stop], axis=0)
            softmax = tf.nn.softmax(tf.matmul(rows, w) + b)
            picked = tf.gather(softmax, chunk_label, batch_dims=1)
            # -log softmax[label]: the book's cross-entropy up to float rounding (it is only reported; the
            # gradient below is exact), without a second exponential over the [rows, V] logits.
            loss_sum = _running_sum(loss_sum, tf.reduce_sum(-tf.math.log(picked)))
            nll_sum = _running_sum(nll_sum, tf.reduce_sum(-tf.math.log(picked + 1e-10)))  # the book's perplexity
            chunk_rows.append(rows)
            chunk_softmax.append(softmax)
        count = T * B
        loss = loss_sum / count

        def grad(d_loss, *unused):
            # Only the loss is differentiated; the other outputs feed assignments and reports.
            scale = d_loss / count
            d_w = d_b = None
            d_outputs = [None] * T
            for chunk, rows, softmax, chunk_label in zip(chunks, chunk_rows, chunk_softmax, chunk_labels):
                d_logits = (softmax - tf.one_hot(chunk_label, tf.shape(softmax)[1])) * scale
                d_w = _running_sum(d_w, tf.matmul(rows, d_logits, transpose_a=True))
                d_b = _running_sum(d_b, tf.reduce_sum(d_logits, axis=0))
                d_outputs[chunk.start:chunk.stop] = tf.split(tf.matmul(d_logits, w, transpose_b=True),
                                                             len(chunk), axis=0)

            no_input, no_peephole, no_bias = tf.zeros([B, 0]), tf.zeros([H]), tf.zeros([4 * H])
            d_c = tf.zeros([B, H])                        # the final state only feeds the saved state
            d_h_next = None
            d_gates = [None] * T
            d_table = d_hidden = None
            for chunk, chunk_id in zip(reversed(chunks), reversed(chunk_ids)):
                for t in reversed(chunk):
                    d_h = d_outputs[t] if d_h_next is None else d_outputs[t] + d_h_next
                    if masks[t] is not None:
                        d_h = d_h * masks[t]
                    step = tf.raw_ops.LSTMBlockCellGrad(
                        x=no_input, cs_prev=inputs_c[t], h_prev=inputs_h[t], w=hidden, wci=no_peephole,
                        wcf=no_peephole, wco=no_peephole, b=no_bias, **gates_of_step[t], cs_grad=d_c, h_grad=d_h,
                        use_peephole=False)
                    d_gates[t], d_c = step.dicfo, step.cs_prev_grad
                    if t > 0:
                        d_h_next = tf.matmul(d_gates[t], hidden, transpose_b=True)
                # This chunk's share of the weight gradients, beside the chain's earlier steps.
                d_chunk_gates = tf.concat(d_gates[chunk.start:chunk.stop], axis=0)
                d_table = _running_sum(d_table, tf.math.unsorted_segment_sum(d_chunk_gates, chunk_id,
                                                                             tf.shape(table)[0]))
                d_hidden = _running_sum(d_hidden, tf.matmul(tf.concat(inputs_h[chunk.start:chunk.stop], axis=0),
                                                            d_chunk_gates, transpose_a=True))
            return d_table, d_hidden, d_w, d_b

        return (loss, nll_sum, tf.concat(outputs, axis=0), saved_output, c), grad

    return Forward(*language_model(table, hidden, w, b))
