"""The fast graph's training unroll of the book's LSTM and its loss, with hand-written gradients.

Same mathematics as the autodiff of `LSTMCell.fused` over `num_unrollings` steps (the equivalence
tests hold both to the book's literal graph within 1e-5), arranged for fewer, larger ops:
- the gradient of the hidden-state matrix is one `[H, T*B] x [T*B, 4H]` product instead of
  `num_unrollings` small products summed by AddN;
- the cross-entropy gradient is `(softmax - one_hot) / N` from the softmax the book's perplexity
  needs anyway, instead of TensorFlow's slower fused sparse cross-entropy kernel.
"""
import tensorflow as tf


def lstm_unroll(x_gates, h0, c0, hidden, masks, save_dropped_output):
    """Run the book's LSTM over `x_gates` [T, B, 4H] (each step's `x·Wx + b`, gates i, f, c, o).

    `h0`, `c0`: [B, H] starting state (tensors, not differentiated: the book's saved state is not
    trainable). `hidden`: [H, 4H], the gates' hidden-state matrices side by side. `masks`: [T, B, H]
    dropout masks (already scaled) or None. Returns (outputs [T, B, H] after dropout, the output to
    save, the final cell state).
    """
    T = x_gates.shape[0]
    step_masks = tf.unstack(masks) if masks is not None else [None] * T

    @tf.custom_gradient
    def unroll(x_gates, hidden):
        h, c = h0, c0
        inputs_h, inputs_c, activations, tanh_states, outputs = [], [], [], [], []
        for t, x in enumerate(tf.unstack(x_gates)):
            inputs_h.append(h)
            inputs_c.append(c)
            gates = x + tf.matmul(h, hidden)
            i, f, u, o = tf.split(gates, 4, axis=1)
            i, f, u, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(u), tf.sigmoid(o)
            c = f * c + i * u
            tanh_c = tf.tanh(c)
            h_before_dropout = o * tanh_c
            h = h_before_dropout if step_masks[t] is None else h_before_dropout * step_masks[t]
            activations.append((i, f, u, o))
            tanh_states.append(tanh_c)
            outputs.append(h)
        saved_output = h if save_dropped_output else h_before_dropout

        def grad(d_outputs, *unused_final_state_grads):
            # The final output and state only feed the saved-state assignments: no gradient there.
            d_outputs = tf.unstack(d_outputs)
            d_h_next = d_c_next = None
            d_gates = [None] * T
            for t in reversed(range(T)):
                d_h = d_outputs[t] if d_h_next is None else d_outputs[t] + d_h_next
                if step_masks[t] is not None:
                    d_h = d_h * step_masks[t]
                i, f, u, o = activations[t]
                tanh_c = tanh_states[t]
                d_c = d_h * o * (1 - tanh_c * tanh_c)
                if d_c_next is not None:
                    d_c = d_c + d_c_next
                d_gates[t] = tf.concat([d_c * u * i * (1 - i), d_c * inputs_c[t] * f * (1 - f),
                                        d_c * i * (1 - u * u), d_h * tanh_c * o * (1 - o)], axis=1)
                d_c_next = d_c * f
                if t > 0:
                    d_h_next = tf.matmul(d_gates[t], hidden, transpose_b=True)
            d_x_gates = tf.stack(d_gates)
            d_hidden = tf.matmul(tf.concat(inputs_h, axis=0), tf.reshape(d_x_gates, [-1, hidden.shape[1]]),
                                 transpose_a=True)
            return d_x_gates, d_hidden

        return (tf.stack(outputs), saved_output, c), grad

    return unroll(x_gates, hidden)


def mean_cross_entropy(logits, prediction, labels):
    """`reduce_mean(sparse_softmax_cross_entropy(labels, logits))`; `prediction` is `softmax(logits)`."""

    @tf.custom_gradient
    def loss(logits):
        picked = tf.gather(logits, labels, batch_dims=1)
        value = tf.reduce_mean(tf.reduce_logsumexp(logits, axis=1) - picked)

        def grad(d_loss):
            count = tf.cast(tf.shape(logits)[0], logits.dtype)
            return d_loss * (prediction - tf.one_hot(labels, tf.shape(logits)[1])) / count

        return value, grad

    return loss(logits)
