"""`bench`'s training contenders, each in a fresh process: the book's graphs, PyTorch and Keras 3, and each word
recipe beside the same maths built the obvious way.

`start_worker` writes a spec (the contender, the Config, where the recorded batches are) and starts
`python -m reproduce.bench_workers SPEC`; `worker_main` times the contender's training iterations and
writes {"result": ...} or {"error": ..., "missing": bool} beside the spec. A fresh process gives each
contender its own peak resident memory, no idle thread pool of the one before, and, for Keras 3, the
eager execution that the book's graph module switches off when it is imported.
"""
import collections
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import tensorflow as tf

from reproduce.config import Config
from reproduce.session import session_config

# reproduce.model, torch and keras are imported inside the worker that uses them: the book's graph module
# switches eager execution off, which Keras 3 needs on, and torch and keras take seconds to load (or are
# missing, an outcome the benchmark reports).
tf1 = tf.compat.v1
REPO = Path(__file__).resolve().parent.parent
# Every contender that trains the book's graph -> (config.graph, config.cell); `fast-one-core` is the fast
# graph on one core, run as two processes side by side (the study layout).
BOOK_CONTENDERS = {"literal": ("faithful", "lstm"), "fast": ("fast", "lstm"),
                   "literal-peephole": ("faithful", "peephole"), "fast-peephole": ("fast", "peephole"),
                   "literal-gru": ("faithful", "gru"), "fast-gru": ("fast", "gru"), "fast-one-core": ("fast", "lstm")}
INSTALL_HINT = "pip install -r requirements-bench.txt"


def log(message):
    """One progress line of the benchmark, on stderr."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _proc_status_mb(field):
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MB; None where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def resident_mb():
    """This process's resident memory now."""
    return _proc_status_mb("VmRSS")


def peak_rss_mb():
    """This process's peak resident memory: VmHWM (reset by exec, unlike ru_maxrss), else ru_maxrss."""
    peak = _proc_status_mb("VmHWM")
    if peak is not None:
        return peak
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def time_training(name, step, reset_state, batches, warmup, iterations):
    """Durations of `step(inputs, labels, iteration)` over the recorded batches, after `warmup` untimed ones:
    {"durations": wall-clock seconds, "cpu_durations": this process's CPU seconds (all its threads), "losses"}.

    The state reset at a new document (the book's `reset_train_state`) is outside the timed region."""
    timings = {"durations": [], "cpu_durations": [], "losses": []}
    for iteration in range(warmup + iterations):
        if batches["starts"][iteration]:
            reset_state()
        inputs, labels = batches["inputs"][iteration], batches["labels"][iteration]
        started, cpu_started = time.perf_counter(), time.process_time()
        loss = step(inputs, labels, iteration)
        elapsed, cpu_elapsed = time.perf_counter() - started, time.process_time() - cpu_started
        timings["losses"].append(float(loss))
        if iteration >= warmup:
            timings["durations"].append(elapsed)
            timings["cpu_durations"].append(cpu_elapsed)
        if iteration + 1 == warmup:
            log(f"  {name}: {warmup} warm-up iterations done, timing {iterations}")
    return timings


def time_session_training(spec, session, train_op, loss, feed, reset_op, batches):
    """`time_training` of a tf.compat.v1 graph: one `session.run([train_op, loss], feed(inputs, labels, iteration))`
    an iteration, `reset_op` (or nothing, when None) at a new document."""
    def step(inputs, labels, iteration):
        return session.run([train_op, loss], feed(inputs, labels, iteration))[1]

    def reset_state():
        if reset_op is not None:
            session.run(reset_op)

    return time_training(spec["name"], step, reset_state, batches, spec["warmup"], spec["iterations"])


def median_seconds(action, repeats, prepare=None):
    """(median seconds of `action()` over `repeats` timed runs after one untimed, what its last run returned);
    `prepare()` runs before each, untimed."""
    durations = []
    for repeat in range(repeats + 1):
        if prepare:
            prepare()
        started = time.perf_counter()
        returned = action()
        if repeat:
            durations.append(time.perf_counter() - started)
    return float(np.median(durations)), returned


def train_flops(config, vocabulary_size, gates, one_hot):
    """FLOPs of one training iteration's matrix products: forward, and backward to both operands (x3).

    Per step the hidden product [B,H]x[H,gates*H], once the output product [T*B,H]x[H,V]; with one-hot
    inputs also [B,V]x[V,gates*H] per step, x2 only (no gradient flows into a placeholder)."""
    B, T, H, V = config.batch_size, config.num_unrollings, config.num_nodes, vocabulary_size
    recurrent = T * 2 * B * H * gates * H
    output = 2 * T * B * H * V
    inputs = T * 2 * B * V * gates * H if one_hot else 0
    return 3 * (recurrent + output) + 2 * inputs


def profile_fast_graph(session, fetches, feed, runs=3):
    """Op types that take the most time in a traced training iteration (tf RunMetadata, FULL_TRACE).

    Op durations overlap (the executor runs independent ops side by side), so their sum exceeds the wall time."""
    options = tf1.RunOptions(trace_level=tf1.RunOptions.FULL_TRACE)
    op_micros, op_counts = collections.Counter(), collections.Counter()
    wall_micros = 0.0
    for _ in range(runs):
        metadata = tf1.RunMetadata()
        session.run(fetches, feed, options=options, run_metadata=metadata)
        starts, ends = [], []
        for device in metadata.step_stats.dev_stats:
            for node in device.node_stats:
                label = node.timeline_label
                op_type = label.split(" = ", 1)[1].split("(", 1)[0] if " = " in label else node.node_name
                op_micros[op_type] += node.all_end_rel_micros
                op_counts[op_type] += 1
                starts.append(node.all_start_micros)
                ends.append(node.all_start_micros + node.all_end_rel_micros)
        wall_micros += max(ends) - min(starts)
    total = sum(op_micros.values())
    top = [{"op": op, "ms": micros / runs / 1000.0, "count": op_counts[op] // runs, "share": micros / total}
           for op, micros in op_micros.most_common(10)]
    return {"wall_ms": wall_micros / runs / 1000.0, "op_time_sum_ms": total / runs / 1000.0,
            "ops_per_iteration": sum(op_counts.values()) // runs, "top_op_types": top}


def _load_batches(spec):
    with np.load(spec["batches"]) as recorded:
        return {key: recorded[key] for key in recorded.files}


def work_book_graph(spec):
    """Train the book's graph (literal or fast) for the timed iterations; the fast one saves a checkpoint."""
    from reproduce.model import BookModel    # here, not at the top: it turns off eager execution, Keras's mode

    graph, cell = BOOK_CONTENDERS[spec["name"]]
    config = Config.from_dict({**spec["config"], "graph": graph, "cell": cell})
    batches = _load_batches(spec)
    model = BookModel(config, spec["vocabulary_size"])
    session = tf1.Session(graph=model.graph, config=session_config(cores=spec["threads"]))
    session.run(model.init)
    # What the trainer runs: the book's feed, one session.run (the perplexity is fetched beside the loss).
    result = time_session_training(spec, session, [model.optimizer, model.train_perplexity_without_exp], model.loss,
                                   model.train_feed, model.reset_train_state, batches)
    result["flops"] = train_flops(config, spec["vocabulary_size"], len(model.cell.gates), spec["name"] == "literal")
    if spec["name"] == "fast":
        if spec["profile"]:
            fetches = [model.optimizer, model.loss, model.train_perplexity_without_exp]
            feed = model.train_feed(batches["inputs"][-1], batches["labels"][-1], len(result["losses"]))
            result["profile"] = profile_fast_graph(session, fetches, feed)
        model.saver.save(session, spec["checkpoint"], write_meta_graph=False, write_state=False)
    session.close()
    return result


def work_pytorch(spec):
    """nn.Embedding + nn.LSTM + nn.Linear, Adam, gradient norm clipped at 5, state carried like the book's."""
    import torch                             # each worker loads only its own framework
    from torch import nn
    from torch.nn import functional

    config = SimpleNamespace(**spec["config"])
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(config.seed)
    batches = _load_batches(spec)
    V, H, B = spec["vocabulary_size"], config.num_nodes, config.batch_size
    embedding, lstm, linear = nn.Embedding(V, H), nn.LSTM(H, H), nn.Linear(H, V)     # LSTM: [T, B, H] in and out
    parameters = [*embedding.parameters(), *lstm.parameters(), *linear.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=config.learning_rate)
    zeros = (torch.zeros(1, B, H), torch.zeros(1, B, H))
    state = zeros

    def step(inputs, labels, iteration):
        nonlocal state
        outputs, (hidden, cell) = lstm(embedding(torch.from_numpy(inputs).long()), state)
        loss = functional.cross_entropy(linear(outputs.reshape(-1, H)), torch.from_numpy(labels).long().reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(parameters, config.clip_norm)
        optimizer.step()
        state = (hidden.detach(), cell.detach())
        return loss.item()

    def reset_state():
        nonlocal state
        state = zeros

    result = time_training("pytorch", step, reset_state, batches, spec["warmup"], spec["iterations"])
    return {**result, "version": torch.__version__, "threads": torch.get_num_threads()}


def work_keras(spec):
    """Keras 3 (TF backend): Embedding + LSTM(return_sequences, stateful) + Dense, Adam clipnorm 5, train_on_batch.

    Keras 3 needs eager execution: nothing in its process imports the book's graph module, which switches it off."""
    os.environ["KERAS_BACKEND"] = "tensorflow"
    try:
        tf.config.threading.set_intra_op_parallelism_threads(spec["threads"])
        tf.config.threading.set_inter_op_parallelism_threads(2)       # as the book's session_config
    except RuntimeError:                                              # context already up: keep its defaults
        pass
    import keras
    if not keras.__version__.startswith("3."):
        raise ImportError(f"`import keras` gave Keras {keras.__version__}, not Keras 3")
    if keras.backend.backend() != "tensorflow":
        raise ImportError(f"Keras 3 runs on the {keras.backend.backend()} backend, not tensorflow")

    config = SimpleNamespace(**spec["config"])
    keras.utils.set_random_seed(config.seed)
    batches = _load_batches(spec)
    V, H, B, T = spec["vocabulary_size"], config.num_nodes, config.batch_size, config.num_unrollings
    lstm = keras.layers.LSTM(H, return_sequences=True, stateful=True)
    model = keras.Sequential([keras.Input((T,), batch_size=B, dtype="int32"), keras.layers.Embedding(V, H),
                              lstm, keras.layers.Dense(V)])
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=config.clip_norm),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    def step(inputs, labels, iteration):          # [T, B] ids; Keras wants batch first
        return model.train_on_batch(inputs.T, labels.T)

    result = time_training("keras", step, lstm.reset_state, batches, spec["warmup"], spec["iterations"])
    return {**result, "version": keras.__version__, "jit_compile": bool(model.jit_compile),
            "threads": tf.config.threading.get_intra_op_parallelism_threads()}


# ====================================================================== the word recipes
# Every word contender -> (its recipe, how its graph is built): "recipe" is the recipe's own model class
# (recipes.RECIPES), fed and fetched as the word loop does; the others are the same maths built the obvious way.
WORD_CONTENDERS = {"book-words": ("book-words", "recipe"),
                   "book-words-matmuls": ("book-words", "matmuls"),
                   "book-words-deep": ("book-words-deep", "recipe"),
                   "book-words-deep-dynamic-rnn": ("book-words-deep", "dynamic_rnn"),
                   "book-words-deep-fused": ("book-words-deep", "BlockLSTM")}


def word_recipe_config(spec):
    """(the word recipe of a spec, its config as the spec carries it)."""
    from reproduce.recipes import RECIPES        # here: the recipes' modules build graphs (eager execution off)
    recipe = RECIPES[spec["config"]["recipe"]]
    return recipe, recipe.config_class.from_dict(spec["config"])


def work_word_recipe(spec):
    """A word recipe's training iteration as the recipe builds it (its model class, its feed, what the word loop
    fetches: the optimiser and the book's perplexity), then the rest of a step: the validation and the beam text
    the word loop runs after each step's iterations, each timed (`median_seconds`)."""
    from reproduce.train import split_documents, validate
    from reproduce.word_runs import BEAM_NEIGHBORS, beam_text
    from reproduce.words import load_words

    recipe, config = word_recipe_config(spec)
    batches = _load_batches(spec)
    model = recipe.build(config, spec["vocabulary_size"])
    session = tf1.Session(graph=model.graph, config=session_config(cores=spec["threads"]))
    session.run(model.init)
    model.load_embeddings(session, batches["vectors"])
    result = time_session_training(spec, session, model.optimizer, model.train_perplexity_without_exp,
                                   model.train_feed, model.reset_train_state if config.reset_train_state else None,
                                   batches)
    corpus = load_words(config.stories_dir, config.num_files, allow_other_corpus=config.allow_other_corpus)
    _, valid_gens = split_documents(corpus, config, config.long_doc_words, "words")
    result["validation_s"], _ = median_seconds(
        lambda: validate(session, model, valid_gens, config.steps_per_document), spec["repeats"])
    beam, rng = model.beam_graph(BEAM_NEIGHBORS), np.random.RandomState(config.seed)
    result["beam_text_s"], _ = median_seconds(
        lambda: [beam_text(session, model, beam, corpus, config, rng) for _ in range(config.sample_segments)],
        spec["repeats"])
    session.close()
    return result


def plain_loss(outputs, labels, vocabulary_size):
    """`outputs·w + b` and the mean sparse softmax cross-entropy of `labels` ([T, B] ids), outputs [T * B, units]."""
    w = tf1.get_variable("w", [outputs.shape[1], vocabulary_size])
    b = tf1.get_variable("b", [vocabulary_size], initializer=tf1.zeros_initializer())
    logits = tf.matmul(outputs, w) + b
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.reshape(labels, [-1]),
                                                                         logits=logits))


def book_words_by_matmuls(config, vectors, inputs, labels):
    """book-words written the obvious way: `embedding_lookup` of the word vectors, per step one
    [B, E + H] x [E + H, 4H] product and the LSTM's gates, `tf.nn.dropout` on the output that feeds the next step,
    the state kept in variables between iterations. Returns (loss, the state's reset)."""
    B, H = config.batch_size, config.num_nodes
    embeddings = tf1.Variable(vectors, name="embeddings")
    kernel = tf1.get_variable("kernel", [vectors.shape[1] + H, 4 * H])
    bias = tf1.get_variable("bias", [4 * H], initializer=tf1.zeros_initializer())
    saved = [tf1.Variable(tf.zeros([B, H]), trainable=False, name=name) for name in ("saved_output", "saved_state")]
    output, state = saved
    outputs = []
    for x in tf.unstack(tf.nn.embedding_lookup(embeddings, inputs)):
        i, u, f, o = tf.split(tf.matmul(tf.concat([x, output], axis=1), kernel) + bias, 4, axis=1)
        state = tf.sigmoid(f) * state + tf.sigmoid(i) * tf.tanh(u)
        output = tf.sigmoid(o) * tf.tanh(state)
        if config.dropout > 0:
            output = tf.nn.dropout(output, rate=config.dropout)
        outputs.append(output)
    with tf.control_dependencies([saved[0].assign(output), saved[1].assign(state)]):
        loss = plain_loss(tf.concat(outputs, axis=0), labels, vectors.shape[0])
    return loss, tf.group(*[v.assign(tf.zeros_like(v)) for v in saved])


def deep_words_by_dynamic_rnn(config, vectors, inputs, labels):
    """book-words-deep written the obvious way: `dynamic_rnn` over a MultiRNNCell of LSTMCells, each in a
    DropoutWrapper drawing its own variational masks (nothing fed), from a zero state; the loss summed over
    the steps. Returns (loss, None: no state is kept)."""
    from reproduce.classics.common import quiet_deprecations
    from reproduce.word_runs import layer_sizes

    sizes = layer_sizes(config.layer_nodes)
    embeddings = tf1.Variable(vectors, name="embeddings")
    with quiet_deprecations():
        cells = tf1.nn.rnn_cell.MultiRNNCell([
            tf1.nn.rnn_cell.DropoutWrapper(tf1.nn.rnn_cell.LSTMCell(n), output_keep_prob=1.0 - config.dropout,
                                           variational_recurrent=True, dtype=tf.float32) for n in sizes])
        outputs, _ = tf1.nn.dynamic_rnn(cells, tf.nn.embedding_lookup(embeddings, inputs), time_major=True,
                                        dtype=tf.float32)
    return plain_loss(tf.reshape(outputs, [-1, sizes[-1]]), labels, vectors.shape[0]) * config.num_unrollings, None


def deep_words_by_fused_op(config, vectors, inputs, labels):
    """book-words-deep with TensorFlow's fused LSTM op: each layer one `BlockLSTM` over all the steps (the
    LSTMCell's gates and forget bias 1), its outputs times the layer's one [1, units] variational mask. Returns
    (loss, None)."""
    from reproduce.word_runs import layer_sizes

    B, T = config.batch_size, config.num_unrollings
    keep = 1.0 - config.dropout
    layer = tf.nn.embedding_lookup(tf1.Variable(vectors, name="embeddings"), inputs)
    for k, units in enumerate(layer_sizes(config.layer_nodes)):
        kernel = tf1.get_variable(f"kernel_{k}", [layer.shape[2] + units, 4 * units])
        bias = tf1.get_variable(f"bias_{k}", [4 * units], initializer=tf1.zeros_initializer())
        zeros, no_peephole = tf.zeros([B, units]), tf.zeros([units])
        layer = tf.raw_ops.BlockLSTM(seq_len_max=tf.constant(T, tf.int64), x=layer, cs_prev=zeros, h_prev=zeros,
                                     w=kernel, wci=no_peephole, wcf=no_peephole, wco=no_peephole, b=bias,
                                     forget_bias=1.0, cell_clip=-1.0, use_peephole=False).h
        if config.dropout > 0:
            layer = layer / keep * tf.floor(keep + tf.random.uniform([1, units]))
    return plain_loss(tf.reshape(layer, [-1, layer.shape[2]]), labels, vectors.shape[0]) * T, None


PLAIN_WORD_GRAPHS = {"matmuls": book_words_by_matmuls, "dynamic_rnn": deep_words_by_dynamic_rnn,
                     "BlockLSTM": deep_words_by_fused_op}


def work_plain_words(spec):
    """A word recipe's maths built the obvious way (PLAIN_WORD_GRAPHS), trained with the recipe's optimiser:
    Adam at the rate the recipe trains with, the gradients' global norm clipped."""
    _, config = word_recipe_config(spec)
    batches = _load_batches(spec)
    T, B = config.num_unrollings, config.batch_size
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(config.seed)
        inputs = tf1.placeholder(tf.int32, [T, B], name="inputs")
        labels = tf1.placeholder(tf.int32, [T, B], name="labels")
        loss, reset = PLAIN_WORD_GRAPHS[WORD_CONTENDERS[spec["name"]][1]](config, batches["vectors"], inputs, labels)
        optimizer = tf1.train.AdamOptimizer(getattr(config, "fed_learning_rate", 0) or config.learning_rate)
        gradients, variables = zip(*optimizer.compute_gradients(loss))
        gradients, _ = tf.clip_by_global_norm(gradients, config.clip_norm)
        train = optimizer.apply_gradients(zip(gradients, variables))
        init = tf1.global_variables_initializer()
    session = tf1.Session(graph=graph, config=session_config(cores=spec["threads"]))
    session.run(init)
    result = time_session_training(spec, session, train, loss,
                                   lambda batch_inputs, batch_labels, _: {inputs: batch_inputs, labels: batch_labels},
                                   reset, batches)
    session.close()
    return result


WORKERS = {**{name: work_book_graph for name in BOOK_CONTENDERS}, "pytorch": work_pytorch, "keras": work_keras,
           **{name: work_word_recipe if how == "recipe" else work_plain_words
              for name, (_, how) in WORD_CONTENDERS.items()}}


def worker_main(spec_path):
    """Run one contender; write {"result": ...} or {"error": ..., "missing": bool} beside the spec."""
    spec = json.loads(Path(spec_path).read_text())
    rss_before_mb = resident_mb()
    try:
        outcome = {"result": WORKERS[spec["name"]](spec)}
    except ImportError as e:                                          # a peer that cannot be loaded
        outcome = {"error": f"{e or e.__class__.__name__} ({INSTALL_HINT})", "missing": True}
    except Exception as e:                                            # noqa: BLE001 (reported, not hidden)
        traceback.print_exc()
        outcome = {"error": f"{e.__class__.__name__}: {e}", "missing": False}
    if "result" in outcome:
        outcome["result"].update(peak_rss_mb=peak_rss_mb(), rss_before_mb=rss_before_mb)
    Path(spec["output"]).write_text(json.dumps(outcome))


def start_worker(name, config, vocabulary_size, args, threads, workdir, cores=None, tag="", batches="batches.npz"):
    """Start one contender in a fresh process of this module (pinned to `cores` when given), training on the
    batches recorded in `batches` of `workdir`; returns (the process, where its outcome will be)."""
    workdir = Path(workdir)
    spec_path, output = workdir / f"{name}{tag}.spec.json", workdir / f"{name}{tag}.result.json"
    spec = {"name": name, "config": dataclasses.asdict(config), "vocabulary_size": vocabulary_size,
            "iterations": args.iterations, "warmup": args.warmup, "threads": threads,
            "profile": args.profile and name == "fast", "batches": str(workdir / batches),
            "repeats": args.generate_repeats, "checkpoint": str(workdir / "model"), "output": str(output)}
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None
    process = subprocess.Popen([sys.executable, "-m", "reproduce.bench_workers", str(spec_path)], env=env,
                               preexec_fn=pin)
    return process, output


def worker_outcome(process, output):
    process.wait()
    if not output.exists():
        return {"error": f"the worker process exited with status {process.returncode} and no result",
                "missing": False}
    return json.loads(output.read_text())


def run_worker(name, config, vocabulary_size, args, threads, workdir, batches="batches.npz"):
    """Train one contender in a fresh process of this module; returns its outcome dict."""
    return worker_outcome(*start_worker(name, config, vocabulary_size, args, threads, workdir, batches=batches))


if __name__ == "__main__":
    worker_main(sys.argv[1])
