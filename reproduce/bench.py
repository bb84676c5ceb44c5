"""Benchmark the book's graph (literal and fast) against PyTorch and Keras 3; write bench.json.

`python reproduce/main.py bench` or `python -m reproduce.bench`. At the book's sizes (batch 64,
50 unrollings, 128 units, the real vocabulary) and on real batches from `BatchGenerator`, it times
training iterations after a warm-up (the book's LSTM, and its peephole LSTM and GRU on both graphs),
generating 500 bigrams from a restored checkpoint, validation over the 500 validation bigrams, peak
memory of training, the machine's sgemm, and the two ways a study can use the cores: one training
process on all of them, or one process per core side by side (the faster is recorded in
`study.LAYOUT_RECORD`, which `study` takes as its default on the machine it was measured on).

Each training contender runs in a fresh worker process (`reproduce.bench_workers`), one after another,
never side by side: Keras 3 needs eager execution, which the book's graph module switches off at import;
the peak resident memory of each is then its own; and no framework's idle thread pool competes
with the next one's. Everything else runs in the calling process, in the same run.

Dropout is 0 for every contender, so the four do the same arithmetic (the book trains with 0.2;
`--dropout` measures the book's graphs with it).

The word recipes (book-words, book-words-deep) are timed at their own sizes, with their own dropout: each
iteration as its recipe builds it, beside the same maths built the obvious way (bench_workers.WORD_CONTENDERS),
each in a fresh process on the same recorded batches; then what one step of the word loop costs (its
iterations, validation and beam text) and a whole run of each.
"""
import argparse
import dataclasses
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):          # run as `python reproduce/bench.py`: make `reproduce` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import reproduce  # noqa: E402,F401  (TensorFlow's environment, before anything imports it)
from reproduce.argtypes import at_least, probability, thread_count  # noqa: E402
from reproduce.book_record import printed_word_steps  # noqa: E402
from reproduce.bench_workers import (WORD_CONTENDERS, log, median_seconds, run_worker,  # noqa: E402
                                     start_worker, worker_outcome)
from reproduce.data import BatchGenerator, load_corpus  # noqa: E402
from reproduce.errors import UserError, report_errors  # noqa: E402
from reproduce.files import check_output, write_json  # noqa: E402
from reproduce.model import BookModel  # noqa: E402
from reproduce.progress import format_seconds  # noqa: E402
from reproduce.provenance import cpu  # noqa: E402
from reproduce.recipes import RECIPES  # noqa: E402
from reproduce.sample import generate_ids, generate_ids_numpy, sample_top3  # noqa: E402
from reproduce.session import available_cores, session_config  # noqa: E402
from reproduce.study import LAYOUT_RECORD, record_layout  # noqa: E402
from reproduce.train import split_documents, validate  # noqa: E402
from reproduce.word2vec import BOOK_EMBEDDINGS_SHAPE  # noqa: E402
from reproduce.word_runs import BOOK_EMBEDDINGS_FILE, embeddings_of  # noqa: E402
from reproduce.words import load_words  # noqa: E402

tf1 = tf.compat.v1
BOOK_GRAPHS = {"literal": "faithful", "fast": "fast"}      # contender -> BookModel's config.graph
CELLS = ("peephole", "gru")
PEERS = ("pytorch", "keras")
LABELS = {"literal": "literal graph (one-hot)", "fast": "fast graph (ids)", "pytorch": "PyTorch", "keras": "Keras 3",
          "literal-peephole": "peephole LSTM, literal graph", "fast-peephole": "peephole LSTM, fast graph",
          "literal-gru": "GRU, literal graph", "fast-gru": "GRU, fast graph",
          "book-words": "book-words (recipe)", "book-words-matmuls": "per-step matmuls",
          "book-words-deep": "book-words-deep (recipe)", "book-words-deep-dynamic-rnn": "dynamic_rnn, MultiRNNCell",
          "book-words-deep-fused": "fused LSTM op (BlockLSTM)"}
WORD_TARGET = 1.5                   # a word recipe's iteration / the same maths built the obvious way, at most
STUDY_SEEDS = 8                     # the study the targets speak of: 8 seeds of book-notebook, 26 steps each


# ====================================================================== command line
def _peer_list(text):
    names = [n.strip() for n in text.split(",") if n.strip() and n.strip() != "none"]
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown peer {unknown[0]!r}: choose from {', '.join(PEERS)} (or none)")
    return names


def add_arguments(parser):
    parser.add_argument("--iterations", type=at_least(2), default=50,
                        help="timed training iterations per contender (default 50: enough for a steady median "
                             "and the p10-p90 spread)")
    parser.add_argument("--warmup", type=at_least(0), default=10, help="untimed iterations first (default 10)")
    parser.add_argument("--output", default="bench.json", help="where to write the results (default bench.json)")
    parser.add_argument("--peers", type=_peer_list, default=list(PEERS),
                        help="peers to train besides the book's graphs: pytorch,keras (default), or none")
    parser.add_argument("--stories-dir", default=os.environ.get("GRIMM_STORIES_DIR", "stories"),
                        help="the Grimm stories (default: stories, env GRIMM_STORIES_DIR)")
    parser.add_argument("--threads", type=thread_count,
                        help="threads for every contender (default: the cores this process may use, which is "
                             "what the book's session uses)")
    parser.add_argument("--dropout", type=probability, default=0.0,
                        help="dropout of the book's graphs (default 0: like-for-like with the peers)")
    parser.add_argument("--generate-repeats", type=at_least(1), default=3,
                        help="timed repetitions of generation, validation and the word recipes' beam text "
                             "(default 3)")
    parser.add_argument("--no-cells", dest="cells", action="store_false",
                        help="skip the peephole LSTM and GRU rows")
    parser.add_argument("--no-study-layouts", dest="study_layouts", action="store_false",
                        help="skip timing two one-core training processes side by side")
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="skip tracing the fast graph's op types")
    parser.add_argument("--no-words", dest="words", action="store_false",
                        help="skip the word recipes (book-words, book-words-deep) and their obvious builds")
    tiny = parser.add_argument_group("smaller sizes (for tests; the benchmark's figures are at the defaults)")
    tiny.add_argument("--num-files", type=at_least(1), default=100, help="stories read (default 100)")
    tiny.add_argument("--num-nodes", type=at_least(1), help="units of each cell of the book's graphs and "
                                                            "book-words (default 128)")
    tiny.add_argument("--batch-size", type=at_least(1), help="default: each recipe's, 64 (book-words-deep 32)")
    tiny.add_argument("--num-unrollings", type=at_least(1), help="bigrams (words) per unrolled window (default 50)")
    tiny.add_argument("--layer-nodes", help="book-words-deep: the units of each layer (default 64,48,32)")
    tiny.add_argument("--steps-per-document", type=at_least(2), default=100, help="default 100")
    tiny.add_argument("--valid-docs", type=at_least(1), default=10, help="validation documents (default 10)")
    tiny.add_argument("--generate-length", type=at_least(1), default=500, help="bigrams of each timed story "
                                                                               "(default 500)")
    tiny.add_argument("--sgemm-size", type=at_least(1), default=2048, help="side of the square matrices of "
                                                                           "the matrix-product probe (default 2048)")


def sizes(args):
    """The config values the benchmark's options give every recipe (a size not given: the recipe's own)."""
    return dict(stories_dir=str(Path(args.stories_dir).resolve()), num_files=args.num_files,
                docs_per_step=min(10, args.num_files), num_nodes=args.num_nodes, batch_size=args.batch_size,
                num_unrollings=args.num_unrollings, steps_per_document=args.steps_per_document,
                valid_docs=args.valid_docs)


def bench_config(args):
    """The book recipe's Config at the benchmark's sizes."""
    return RECIPES["book"].config(dropout=args.dropout, **sizes(args))


def word_configs(args):
    """{word recipe: its config at the benchmark's sizes}, with the recipe's own dropout (0.2), each checked as
    `train` checks it (a bad --layer-nodes is a one-line error)."""
    configs = {"book-words": RECIPES["book-words"].config(**sizes(args)),
               "book-words-deep": RECIPES["book-words-deep"].config(layer_nodes=args.layer_nodes, **sizes(args))}
    for config in configs.values():
        config.check()
    return configs


# ====================================================================== measurement helpers
def spread(seconds):
    """Median and spread of a list of durations, in milliseconds."""
    ms = np.asarray(seconds) * 1000.0
    p10, p25, median, p75, p90 = np.percentile(ms, [10, 25, 50, 75, 90])
    return {"median": median, "p10": p10, "p25": p25, "p75": p75, "p90": p90,
            "min": ms.min(), "max": ms.max(), "n": len(ms)}


def record_batches(train_gens, config, count):
    """`count` real training batches from the documents' batch generators `train_gens`, visited as the trainer
    does (`docs_per_step` random documents, `steps_per_document` iterations each), recorded once so that every
    contender trains on the same ones. Returns inputs and labels [count, T, B] and whether each batch starts a
    document."""
    rng = np.random.RandomState(config.seed)
    inputs, labels, starts = [], [], []
    while len(inputs) < count:
        for doc_id in rng.permutation(config.num_files)[:config.docs_per_step]:
            for k in range(config.steps_per_document):
                batch_inputs, batch_labels = train_gens[doc_id].unroll_ids()
                inputs.append(batch_inputs)
                labels.append(batch_labels)
                starts.append(k == 0)
    return {"inputs": np.stack(inputs[:count]), "labels": np.stack(labels[:count]), "starts": np.array(starts[:count])}


def train_contender(name, config, vocabulary_size, args, threads, workdir, batches="batches.npz"):
    """One training contender in a fresh process (bench_workers.run_worker), its outcome logged and returned."""
    log(f"training: {LABELS[name]} (fresh process)")
    outcome = run_worker(name, config, vocabulary_size, args, threads, workdir, batches=batches)
    if "result" in outcome:
        log(f"training: {LABELS[name]}: median {spread(outcome['result']['durations'])['median']:.1f} ms "
            f"per iteration, peak RSS {outcome['result']['peak_rss_mb']:.0f} MB")
    else:
        log(f"training: {LABELS[name]}: {'not loaded' if outcome['missing'] else 'failed'}: {outcome['error']}")
    return outcome


# ====================================================================== the word recipes
def word_vectors(corpus, config):
    """(the [V, E] word vectors the contenders start from, where they come from): the book's, when
    ./embeddings.npy holds them and the vocabulary is the book's, else random ones of the book's width (an
    iteration's time does not depend on their values; nothing is downloaded)."""
    if Path(BOOK_EMBEDDINGS_FILE).is_file() and corpus.vocabulary_size == BOOK_EMBEDDINGS_SHAPE[0]:
        vectors, described = embeddings_of(config, corpus, log=log)
        return vectors, described["source"]
    rng = np.random.default_rng(config.seed)
    return rng.normal(0.0, 0.1, [corpus.vocabulary_size, BOOK_EMBEDDINGS_SHAPE[1]]).astype(np.float32), "random"


def time_word_recipes(configs, args, threads, workdir):
    """Each word recipe's iteration as its recipe builds it (`configs`: word_configs), then the same maths built
    the obvious way, each in a fresh process on the same recorded batches; what a step and a run of the recipe
    cost (`word_costs`)."""
    first = next(iter(configs.values()))
    corpus = load_words(first.stories_dir, first.num_files)
    words = {"vocabulary_size": corpus.vocabulary_size, "recipes": {}}
    for recipe, config in configs.items():
        train_gens, _ = split_documents(corpus, config, config.long_doc_words, "words")
        vectors, words["word_vectors"] = word_vectors(corpus, config)
        config.embedding_size = int(vectors.shape[1])
        batches = f"{recipe}.npz"
        np.savez(Path(workdir) / batches, vectors=vectors,
                 **record_batches(train_gens, config, args.warmup + args.iterations))
        outcomes = {name: train_contender(name, config, corpus.vocabulary_size, args, threads, workdir, batches)
                    for name, (of, _) in WORD_CONTENDERS.items() if of == recipe}
        for name, outcome in outcomes.items():
            if "result" not in outcome:
                raise UserError(f"{recipe}: the {LABELS[name]} could not be measured: {outcome['error']}")
        words["recipes"][recipe] = word_costs(recipe, config, {name: o["result"] for name, o in outcomes.items()})
    return words


def word_costs(recipe, config, trained):
    """A word recipe's iteration beside the obvious builds (median and spread, CPU time, the ratios), and from its
    median what one step of the word loop costs (docs_per_step x steps_per_document iterations, validation, the
    beam text; checkpoint writes left out) and a run of the recipe's steps and of the printed run's."""
    spreads = {name: spread(result["durations"]) for name, result in trained.items()}
    cpu_ms = {name: float(np.median(result["cpu_durations"])) * 1000.0 for name, result in trained.items()}
    iteration_ms = spreads[recipe]["median"]
    iterations = config.docs_per_step * config.steps_per_document
    result = trained[recipe]
    step_s = iterations * iteration_ms / 1000.0 + result["validation_s"] + result["beam_text_s"]
    printed_steps = len(printed_word_steps(config.printed_run))
    runs = {config.num_steps: "the recipe's run"}
    if printed_steps > 1:
        runs.setdefault(printed_steps, "the printed run")
    return {"config": {"batch_size": config.batch_size, "num_unrollings": config.num_unrollings,
                       "units": config.layer_nodes if recipe == "book-words-deep" else str(config.num_nodes),
                       "embedding_size": config.embedding_size, "dropout": config.dropout},
            "iteration_spread_ms": spreads,
            # This process's CPU time (all its threads): on a machine shared with other work, the steadier measure
            # of what an iteration asks; the wall-clock medians are what a run takes.
            "iteration_cpu_ms": cpu_ms,
            "ratios": {name: iteration_ms / s["median"] for name, s in spreads.items() if name != recipe},
            "cpu_ratios": {name: cpu_ms[recipe] / ms for name, ms in cpu_ms.items() if name != recipe},
            "iterations_per_step": iterations, "validation_s": result["validation_s"],
            "beam_text_s": result["beam_text_s"], "step_s": step_s,
            "runs": [{"steps": steps, "of": of, "hours": steps * step_s / 3600.0}
                     for steps, of in sorted(runs.items())]}


def word_targets(words):
    """Each word recipe's iteration against each obvious build of its maths: at most WORD_TARGET times."""
    return {f"{recipe} / {WORD_CONTENDERS[name][1]} <= {WORD_TARGET}": {"value": ratio,
                                                                       "met": bool(ratio <= WORD_TARGET)}
            for recipe, costs in words["recipes"].items() for name, ratio in costs["ratios"].items()}


# ====================================================================== the study layouts
def time_study_layout(config, vocabulary_size, args, workdir):
    """The fast graph in one process per core, all side by side (each on one core, one thread per op pool
    slot): the per-iteration time of each, to set beside one process on every core."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count()))
    started = [start_worker("fast-one-core", config, vocabulary_size, args, 1, workdir, cores={core}, tag=f"-{core}")
               for core in cores]
    return [worker_outcome(*pair) for pair in started]


def study_estimate(iteration_ms, processes, valid_s, generate_s):
    """Minutes for 8 seeds of book-notebook (26 steps of 1,000 iterations, validation and a story per step)
    with `processes` training side by side at `iteration_ms` each; checkpoint writes left out."""
    step_s = 1000 * iteration_ms / 1000.0 + valid_s + generate_s
    rounds = -(-STUDY_SEEDS // processes)
    return rounds * 26 * step_s / 60.0


def study_layouts(spreads, layout_outcomes, validation, generate_s):
    """The two ways a study uses the cores, as iterations per second of the whole machine and the estimated
    minutes of an 8-seed book-notebook study."""
    one_process_ms = spreads["fast"]["median"]
    layouts = {"one process on every core": {"processes": 1, "iteration_ms": one_process_ms}}
    side_by_side = [spread(o["result"]["durations"])["median"] for o in layout_outcomes if "result" in o]
    if side_by_side and len(side_by_side) == len(layout_outcomes):
        layouts["one process per core"] = {"processes": len(side_by_side), "iteration_ms": max(side_by_side)}
    for layout in layouts.values():
        layout["iterations_per_s"] = layout["processes"] * 1000.0 / layout["iteration_ms"]
        layout["study_minutes"] = study_estimate(layout["iteration_ms"], layout["processes"], validation, generate_s)
    faster = min(layouts, key=lambda name: layouts[name]["study_minutes"])
    return {"layouts": layouts, "faster": faster}


# ====================================================================== in this process: sgemm, generation, validation
class BookGeneratorOHE:
    """The book's `DataGeneratorOHE` written out as the book runs it: a Python loop over batch rows
    filling one-hot arrays, for timing only (data.BatchGenerator is the same semantics, vectorised)."""

    def __init__(self, text, batch_size, num_unroll, vocabulary_size):
        self.text, self.batch_size, self.num_unroll, self.V = list(text), batch_size, num_unroll, vocabulary_size
        self.segments = len(self.text) // batch_size
        self.cursor = [b * self.segments for b in range(batch_size)]

    def next_batch(self):
        data = np.zeros((self.batch_size, self.V), dtype=np.float32)
        labels = np.zeros((self.batch_size, self.V), dtype=np.float32)
        for b in range(self.batch_size):
            if self.cursor[b] + 1 >= len(self.text):
                self.cursor[b] = b * self.segments
            data[b, self.text[self.cursor[b]]] = 1.0
            labels[b, self.text[self.cursor[b] + 1]] = 1.0
            self.cursor[b] = (self.cursor[b] + 1) % len(self.text)
        return data, labels

    def unroll_batches(self):
        batches = [self.next_batch() for _ in range(self.num_unroll)]
        return [d for d, _ in batches], [l for _, l in batches]


def time_batch_generators(corpus, config, repeats=50):
    """Milliseconds to make one iteration's batches: the book's loop generator (one-hot) and ours (ids)."""
    text = corpus.data_list[3]
    book = BookGeneratorOHE(text, config.batch_size, config.num_unrollings, corpus.vocabulary_size)
    ours = BatchGenerator(text, config.batch_size, config.num_unrollings)
    timings = {}
    for name, make in (("book_loop_one_hot", book.unroll_batches), ("vectorised_ids", ours.unroll_ids)):
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            make()
            seconds.append(time.perf_counter() - started)
        timings[name] = float(np.median(seconds) * 1000.0)
    return timings


def measure_sgemm(size, repeats=5):
    """GFLOP/s of a float32 size^3 matrix product, through numpy (its BLAS) and through a tf.matmul op."""
    rng = np.random.default_rng(0)

    def numpy_rate(m, k, n, repeats):
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        a @ b
        durations = []
        for _ in range(repeats):
            started = time.perf_counter()
            a @ b
            durations.append(time.perf_counter() - started)
        return 2.0 * m * k * n / np.median(durations) / 1e9

    rates = {"numpy_sgemm": numpy_rate(size, size, size, repeats)}
    graph = tf.Graph()
    with graph.as_default():
        product = tf.matmul(tf.random.normal([size, size]), tf.random.normal([size, size]))
    with tf1.Session(graph=graph) as session:
        session.run(product.op)
        durations = []
        for _ in range(repeats):
            started = time.perf_counter()
            session.run(product.op)                        # the op only: no copy of the result out
            durations.append(time.perf_counter() - started)
    rates["tf_matmul"] = 2.0 * size ** 3 / np.median(durations) / 1e9
    return rates


def model_shape_gemm(config, vocabulary_size, gates):
    """numpy GFLOP/s at the fast path's two product shapes (serial recurrence: small products matter)."""
    rng = np.random.default_rng(0)
    H, B, T = config.num_nodes, config.batch_size, config.num_unrollings
    rates = {}
    for name, (m, k, n), repeats in (("recurrent", (B, H, gates * H), 50),
                                     ("output", (T * B, H, vocabulary_size), 20)):
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        a @ b
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        rates[f"{name} [{m},{k}]x[{k},{n}]"] = 2.0 * m * k * n * repeats / (time.perf_counter() - started) / 1e9
    return rates


_CALLABLES = {}


def callable_generate(session, model, first_id, length, sampler, rng):
    """The book's loop through `session.make_callable`: the same ops, without building a feed dict per run."""
    key = (id(session), id(model))
    if key not in _CALLABLES:                                 # made once per session, as a program would
        _CALLABLES[key] = session.make_callable(model.test_prediction, feed_list=[model.test_input])
    predict = _CALLABLES[key]
    ids, current = [], first_id
    for _ in range(length):
        current = sampler(predict(model.test_feed(current)[model.test_input]).ravel(), rng)
        ids.append(current)
    return ids


def measure_generation_and_validation(config, corpus, checkpoint, args):
    """Restore the fast worker's checkpoint into both graphs; time generation variants and validation."""
    sessions = {}
    for name, graph in BOOK_GRAPHS.items():
        model = BookModel(dataclasses.replace(config, graph=graph), corpus.vocabulary_size)
        session = tf1.Session(graph=model.graph, config=session_config(cores=args.threads))
        model.saver.restore(session, str(checkpoint))
        sessions[name] = (model, session)

    first_id = int(corpus.data_list[0][0])
    variants = {"literal": ("literal", generate_ids),          # the book's loop (`generate --graph faithful`)
                "fast": ("fast", generate_ids),
                "fast_callable": ("fast", callable_generate),
                "fast_numpy": ("fast", generate_ids_numpy)}     # what `generate` runs on the fast graph
    timings, stories = {}, {}
    for variant, (graph, generate) in variants.items():
        model, session = sessions[graph]
        timings[variant], stories[variant] = median_seconds(       # the first run is a warm-up
            lambda: generate(session, model, first_id, args.generate_length, sample_top3,
                             np.random.RandomState(config.seed)),
            args.generate_repeats, prepare=lambda: model.saver.restore(session, str(checkpoint)))  # the same test state
        log(f"generate {args.generate_length} bigrams, {variant}: {timings[variant]:.3f} s")
    same_story = {variant: stories[variant] == stories["literal"] for variant in variants}

    # Validation as the trainer runs it (train.validate).
    _, valid_gens = split_documents(corpus, config)
    validation = {}
    for name, (model, session) in sessions.items():
        seconds, perplexity = median_seconds(lambda: validate(session, model, valid_gens, config.steps_per_document),
                                             args.generate_repeats)
        validation[name] = {"seconds": seconds, "perplexity": perplexity}
        log(f"validate {config.valid_docs * (config.steps_per_document // 2)} bigrams, {name}: "
            f"{validation[name]['seconds']:.3f} s (perplexity {perplexity:.3f})")
    for _, session in sessions.values():
        session.close()
    return timings, same_story, validation


# ====================================================================== the whole run
def machine_description(threads):
    return f"{cpu()[0]}, {threads} of {os.cpu_count()} cores, {platform.system()} {platform.release()}, " \
           f"Python {platform.python_version()}"


def run(args):
    config = bench_config(args)
    check_output(args.output)                       # before the benchmark's minutes, not after
    word_recipe_configs = word_configs(args) if args.words else None
    threads = args.threads or available_cores()
    corpus = load_corpus(config.stories_dir, config.num_files)           # fails early, naming what is missing
    V = corpus.vocabulary_size
    log(f"batch {config.batch_size}, {config.num_unrollings} unrollings, {config.num_nodes} units, vocabulary {V} "
        f"from {config.num_files} stories, dropout {config.dropout}, {threads} threads; "
        f"{args.warmup} warm-up + {args.iterations} timed iterations per contender")

    rates = measure_sgemm(args.sgemm_size)
    rates["model_shapes"] = model_shape_gemm(config, V, gates=4)
    log(f"sgemm {args.sgemm_size}^3: numpy {rates['numpy_sgemm']:.1f} GFLOP/s, "
        f"tf.matmul {rates['tf_matmul']:.1f} GFLOP/s")

    batch_ms = time_batch_generators(corpus, config)
    log(f"one iteration's batches: book's loop generator {batch_ms['book_loop_one_hot']:.2f} ms, "
        f"vectorised {batch_ms['vectorised_ids']:.2f} ms")

    outcomes = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        np.savez(Path(workdir) / "batches.npz",
                 **record_batches(split_documents(corpus, config)[0], config, args.warmup + args.iterations))
        cells = [f"{graph}-{cell}" for cell in CELLS for graph in ("literal", "fast")] if args.cells else []
        for name in ["literal", "fast", *cells, *args.peers]:
            outcomes[name] = train_contender(name, config, V, args, threads, workdir)
        for name in BOOK_GRAPHS:
            if "result" not in outcomes[name]:
                raise UserError(f"the {LABELS[name]} could not be measured: {outcomes[name]['error']}")
        words = time_word_recipes(word_recipe_configs, args, threads, workdir) if args.words else None
        generate_s, same_story, validation = measure_generation_and_validation(config, corpus,
                                                                               Path(workdir) / "model", args)
        if args.study_layouts:
            log("training: the fast graph in one process per core, side by side (the study layout)")
            outcomes["fast-one-core"] = time_study_layout(config, V, args, workdir)

    results = summarise(config, V, threads, args, rates, outcomes, generate_s, same_story, validation)
    if words:
        results["words"] = words
        results["targets"].update(word_targets(words))
    results["batch_generator_ms"] = batch_ms
    # The book's whole iteration: its loop generator, then the literal graph; ours: vectorised ids, fast graph.
    results["book_iteration_with_its_generator_ms"] = (results["train_iteration_ms"]["literal"]
                                                      + batch_ms["book_loop_one_hot"])
    results["fast_iteration_with_its_generator_ms"] = (results["train_iteration_ms"]["fast"]
                                                      + batch_ms["vectorised_ids"])
    write_json(args.output, results)            # whole or not at all, by files.py's rule for outputs
    print(format_table(results))
    print(f"(written to {args.output})")
    if results["study"]:
        layouts = results["study"]["layouts"]
        jobs = layouts[results["study"]["faster"]]["processes"]
        record_layout(jobs, {name: layout["iterations_per_s"] for name, layout in layouts.items()})
        print(f"(study's default on the machine bench ran on: --jobs {jobs}, recorded in {LAYOUT_RECORD})")
    if not same_story["fast"]:
        raise UserError("the fast graph generated another story than the literal graph from the same checkpoint "
                        f"and seed; see {args.output}")
    return results


def summarise(config, V, threads, args, rates, outcomes, generate_s, same_story, validation):
    layout_outcomes = outcomes.pop("fast-one-core", [])
    trained = {name: outcome["result"] for name, outcome in outcomes.items() if "result" in outcome}
    spreads = {name: spread(result["durations"]) for name, result in trained.items()}
    fast = trained["fast"]
    fast_gflops = fast["flops"] / (spreads["fast"]["median"] / 1000.0) / 1e9
    exact = [v for v in generate_s if same_story[v] and v != "literal"]
    fastest = min(exact, key=generate_s.get) if exact else "fast"
    losses = np.asarray(trained["literal"]["losses"]), np.asarray(fast["losses"])
    versions = {"python": platform.python_version(), "numpy": np.__version__, "tensorflow": tf.__version__}
    versions.update({name: trained[name]["version"] for name in PEERS if name in trained})
    results = {
        "machine": machine_description(threads),
        "train_iteration_ms": {name: spreads[name]["median"] if name in spreads else None
                               for name in ["literal", "fast", *PEERS]},
        "cells_train_iteration_ms": {name: spreads[name]["median"] for name in spreads
                                     if name.split("-", 1)[-1] in CELLS},
        "study": study_layouts(spreads, layout_outcomes, validation["fast"]["seconds"], generate_s[fastest])
        if layout_outcomes else None,
        "generate_500_s": {"literal": generate_s["literal"], "fast": generate_s[fastest]},
        "valid_500_s": validation["fast"]["seconds"],
        "peak_rss_mb": fast["peak_rss_mb"],
        "fast_gflops": fast_gflops,
        "sgemm_gflops": rates["numpy_sgemm"],
        # ---- more detail
        "train_iteration_spread_ms": spreads,
        # Every worker imports TensorFlow (the package does): peers' peaks include it, see the baseline.
        "train_peak_rss_mb": {name: result["peak_rss_mb"] for name, result in trained.items()},
        "worker_rss_before_training_mb": {name: result["rss_before_mb"] for name, result in trained.items()},
        "train_gflop_per_iteration": {"literal": trained["literal"]["flops"] / 1e9, "fast": fast["flops"] / 1e9},
        "literal_gflops": trained["literal"]["flops"] / (spreads["literal"]["median"] / 1000.0) / 1e9,
        "literal_fast_max_loss_rel_diff": float(np.max(np.abs(losses[0] - losses[1]) / np.abs(losses[0]))),
        "peers_missing": {name: outcome["error"] for name, outcome in outcomes.items() if "result" not in outcome},
        "generate_fast_variant": fastest,
        "generate_500_s_variants": generate_s,
        "generate_same_story_as_literal": same_story,
        "generate_length": args.generate_length,
        "valid_500_s_literal": validation["literal"]["seconds"],
        "valid_perplexity": {name: v["perplexity"] for name, v in validation.items()},
        "gemm_gflops": {f"numpy {args.sgemm_size}^3": rates["numpy_sgemm"],
                        f"tf.matmul {args.sgemm_size}^3": rates["tf_matmul"],
                        **{f"numpy {k}": v for k, v in rates["model_shapes"].items()}},
        "fast_profile": fast.get("profile"),
        "threads": {"book_graphs": threads, **{name: trained[name]["threads"] for name in PEERS if name in trained}},
        "keras_jit_compile": trained["keras"]["jit_compile"] if "keras" in trained else None,
        "versions": versions,
        "config": {"batch_size": config.batch_size, "num_unrollings": config.num_unrollings,
                   "num_nodes": config.num_nodes, "vocabulary_size": V, "num_files": config.num_files,
                   "dropout": config.dropout, "iterations": args.iterations, "warmup": args.warmup,
                   "valid_docs": config.valid_docs, "valid_steps": config.steps_per_document // 2},
    }
    results["targets"] = check_targets(spreads, generate_s[fastest], fast["peak_rss_mb"], fast_gflops,
                                       rates["numpy_sgemm"], results["study"])
    return results


def check_targets(spreads, generate_seconds, rss_mb, fast_gflops, sgemm_gflops, study=None):
    """The benchmark's targets, each as {"value", "met"}; time ratios are relative to the fast path."""
    fast = spreads["fast"]["median"]
    at_least = {"literal / fast >= 2": (spreads["literal"]["median"] / fast, 2.0)}
    at_least.update({f"{peer} / fast >= 1.2": (spreads[peer]["median"] / fast, 1.2)
                     for peer in PEERS if peer in spreads})
    at_most = {"sgemm / fast GFLOP/s <= 2.5": (sgemm_gflops / fast_gflops, 2.5),
               "generate 500 s <= 0.25": (generate_seconds, 0.25), "peak RSS MB <= 1536": (rss_mb, 1536)}
    at_most.update({f"{cell} fast / LSTM fast <= 1.3": (spreads[f"fast-{cell}"]["median"] / fast, 1.3)
                    for cell in CELLS if f"fast-{cell}" in spreads})
    if study:
        at_most["8-seed study minutes <= 60"] = (study["layouts"][study["faster"]]["study_minutes"], 60)
    checks = {name: {"value": value, "met": bool(value >= limit)} for name, (value, limit) in at_least.items()}
    checks.update({name: {"value": value, "met": bool(value <= limit)} for name, (value, limit) in at_most.items()})
    return checks


def format_table(results):
    spreads, medians = results["train_iteration_spread_ms"], results["train_iteration_ms"]
    fast = medians["fast"]
    c = results["config"]
    lines = [f"\nMachine: {results['machine']}",
             f"Batch {c['batch_size']}, {c['num_unrollings']} unrollings, {c['num_nodes']} units, vocabulary "
             f"{c['vocabulary_size']}, dropout {c['dropout']} (like-for-like), {results['threads']['book_graphs']} "
             f"threads; {c['iterations']} timed iterations after {c['warmup']} warm-up\n",
             f"{'':34}{'median':>11}{'p10 - p90':>20}{'x fast':>9}"]
    for name, median in medians.items():
        if median is None:
            why = results["peers_missing"].get(name, "not asked for (--peers)")
            lines.append(f"{'train  ' + LABELS[name]:34}{'-':>11}   not measured: {why}")
            continue
        s = spreads[name]
        lines.append(f"{'train  ' + LABELS[name]:34}{median:8.1f} ms{s['p10']:10.1f} - {s['p90']:5.1f} ms"
                     f"{median / fast:9.2f}")
    for name, median in results["cells_train_iteration_ms"].items():
        s = spreads[name]
        lines.append(f"{'train  ' + LABELS[name]:34}{median:8.1f} ms{s['p10']:10.1f} - {s['p90']:5.1f} ms"
                     f"{median / fast:9.2f}")
    book_total, ours_total = results["book_iteration_with_its_generator_ms"], results["fast_iteration_with_its_generator_ms"]
    lines.append(f"{'with batch making: book (loop)':34}{book_total:8.1f} ms{'':20}{book_total / ours_total:9.2f}"
                 f"  vs fast + vectorised {ours_total:.1f} ms")
    n, fastest = results["generate_length"], results["generate_500_s"]["fast"]
    for variant, seconds in results["generate_500_s_variants"].items():
        same = "" if variant == "literal" else (
            "  same story" if results["generate_same_story_as_literal"][variant] else "  OTHER story: not exact")
        lines.append(f"{f'generate {n}  {variant}':34}{seconds:9.3f} s{'':20}{seconds / fastest:9.2f}{same}")
    valid_bigrams = c["valid_docs"] * c["valid_steps"]
    lines.append(f"{f'validate {valid_bigrams}  fast':34}{results['valid_500_s']:9.3f} s{'':29}"
                 f"  (literal {results['valid_500_s_literal']:.3f} s)")
    lines.append(f"{'peak RSS, fast training':34}{results['peak_rss_mb']:8.0f} MB")
    lines.append(f"{'fast path achieved':34}{results['fast_gflops']:8.1f} GFLOP/s  "
                 f"({results['train_gflop_per_iteration']['fast']:.2f} GFLOP per iteration)")
    lines.append(f"{'sgemm (numpy float32)':34}{results['sgemm_gflops']:8.1f} GFLOP/s  "
                 f"({results['sgemm_gflops'] / results['fast_gflops']:.2f}x the fast path)")
    if results["study"]:
        lines.append("\nStudy layouts (8 seeds of book-notebook, estimated from the timings above):")
        for name, layout in results["study"]["layouts"].items():
            lines.append(f"  {name + ':':28}{layout['processes']} x {layout['iteration_ms']:6.1f} ms per iteration, "
                         f"{layout['iterations_per_s']:5.1f} iterations/s, {layout['study_minutes']:6.1f} min"
                         + ("  (faster: study's default here)" if name == results["study"]["faster"] else ""))
    if results.get("words"):
        lines.extend(format_word_rows(results["words"]))
    lines.append("\nTargets:")
    width = max([30] + [len(name) + 1 for name in results["targets"]])
    lines.extend(f"  {name:{width}}{t['value']:9.2f}  {'met' if t['met'] else 'NOT met'}"
                 for name, t in results["targets"].items())
    return "\n".join(lines)


def format_word_rows(words):
    """The word recipes' lines of the table: each recipe's iteration beside the obvious builds, a step, a run."""
    vectors = {"book": "the book's word vectors", "random": "random word vectors"}.get(words["word_vectors"],
                                                                                    "word vectors from a file")
    lines = [f"\nWord recipes at their own sizes, each beside the same maths built the obvious way (vocabulary "
             f"{words['vocabulary_size']}, {vectors}):",
             f"{'':34}{'median':>11}{'p10 - p90':>20}{'CPU':>11}{'recipe / it':>13}{'(CPU)':>8}"]
    for recipe, costs in words["recipes"].items():
        c = costs["config"]
        lines.append(f"{recipe}: units {c['units']}, batch {c['batch_size']}, {c['num_unrollings']} unrollings, "
                     f"dropout {c['dropout']}, embeddings {c['embedding_size']}")
        for name, s in costs["iteration_spread_ms"].items():
            ratio = (f"{costs['ratios'][name]:13.2f}{costs['cpu_ratios'][name]:8.2f}" if name in costs["ratios"]
                     else "")
            lines.append(f"{'train  ' + LABELS[name]:34}{s['median']:8.1f} ms{s['p10']:10.1f} - {s['p90']:5.1f} ms"
                         f"{costs['iteration_cpu_ms'][name]:8.1f} ms{ratio}")
        lines.append(f"  a step: {costs['iterations_per_step']} iterations, validation {costs['validation_s']:.1f} s, "
                     f"beam text {costs['beam_text_s']:.1f} s: {format_seconds(costs['step_s'])}; "
                     + "; ".join(f"{run['steps']} steps ({run['of']}) {format_seconds(run['hours'] * 3600)}"
                                 for run in costs["runs"]))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m reproduce.bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return report_errors(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
