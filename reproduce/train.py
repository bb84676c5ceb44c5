"""The book's session loop (loop.md), with checkpoints after every step and exact resume."""
import json
import math
import os
import time

import numpy as np
import tensorflow as tf

from reproduce.book_record import printed_documents
from reproduce.config import Config, printed_run
from reproduce.data import BatchGenerator, fingerprint, load_corpus, same_stories
from reproduce.errors import UserError
from reproduce.files import write_atomic, write_csv
from reproduce.model import BookModel
from reproduce.progress import eta, progress_bar
from reproduce.rundir import RunDir, read_json_object
from reproduce.session import rng_state, session_config, set_rng_state
from reproduce.sample import generate_ids, sample_top3

tf1 = tf.compat.v1

METRICS_COLUMNS = ["step", "train_perplexity", "valid_perplexity", "learning_rate", "seconds",
                   "average_loss", "learning_rate_reduced"]


class Plateau:
    """The book's `decay_learning_rate` (spec §5): halve the rate after `threshold` steps without a new best."""

    def __init__(self, threshold, decay_count=0, min_perplexity=1e10):
        self.threshold = threshold
        self.decay_count = decay_count
        self.min_perplexity = min_perplexity

    def update(self, v_perplexity):
        """Feed one validation perplexity; True when the learning rate must be reduced now."""
        if v_perplexity < self.min_perplexity:
            self.decay_count = 0
            self.min_perplexity = v_perplexity
        else:
            self.decay_count += 1
        if self.decay_count >= self.threshold:
            self.decay_count = 0
            return True
        return False


def split_documents(corpus, config, long_enough=None, unit="bigrams"):
    """loop.md "Validation documents": the first `valid_docs` documents longer than `long_enough` (default
    10 x steps_per_document) lend their last `steps_per_document` bigrams (or words: `unit`) to validation.
    Checks the configuration before any graph is built."""
    c = config
    if c.num_files < c.docs_per_step:
        raise UserError(f"--docs-per-step {c.docs_per_step} is more than the {c.num_files} documents read "
                        "(--num-files)", exit_code=2)
    if c.steps_per_document < 2:
        raise UserError(f"--steps-per-document {c.steps_per_document}: validation runs steps_per_document // 2 "
                        "steps, so it must be at least 2", exit_code=2)
    rule = "" if long_enough else "10 x --steps-per-document = "
    long_enough = long_enough or 10 * c.steps_per_document
    long_doc_ids = [i for i, d in enumerate(corpus.data_list) if len(d) > long_enough][:c.valid_docs]
    if len(long_doc_ids) < c.valid_docs:
        raise UserError(f"validation needs {c.valid_docs} documents longer than {rule}{long_enough} {unit}; only "
                        f"{len(long_doc_ids)} of the {c.num_files} files are: read more files or lower "
                        "--steps-per-document", exit_code=2)
    train_texts = [d[:-c.steps_per_document] if i in long_doc_ids else d for i, d in enumerate(corpus.data_list)]
    shortest = min(range(len(train_texts)), key=lambda i: len(train_texts[i]))
    if len(train_texts[shortest]) < c.batch_size + 1:
        raise UserError(f"--batch-size {c.batch_size} is larger than {corpus.files[shortest].name}, which has "
                        f"{len(train_texts[shortest])} training {unit}; lower --batch-size", exit_code=2)
    # A batch row shorter than the unrolling wraps around its segment, as the book's generator did
    # (004.txt gives 44 bigrams per row at batch 64, 50 unrollings); longer than the document is an error.
    if c.num_unrollings > len(train_texts[shortest]):
        raise UserError(f"--num-unrollings {c.num_unrollings} is more than the {len(train_texts[shortest])} "
                        f"training {unit} of {corpus.files[shortest].name}; lower --num-unrollings", exit_code=2)
    check_memory(c, corpus.vocabulary_size)
    train_gens = [BatchGenerator(text, c.batch_size, c.num_unrollings) for text in train_texts]
    valid_gens = [BatchGenerator(corpus.data_list[i][-c.steps_per_document:], 1, 1) for i in long_doc_ids]
    return train_gens, valid_gens


def check_memory(config, vocabulary_size):
    """A one-line error, before any graph is built, for a model that cannot fit in this computer's memory: its
    float32 weights four times over (the weights, their gradients, Adam's two slots) and the unrolled
    activations of one batch (a generous 8 floats per gate and logit, forward and backward)."""
    c, V = config, vocabulary_size
    H, gates = c.num_nodes, 3 if c.cell == "gru" else 4
    weights = gates * H * (V + H + 1) + H * V + V
    activations = c.batch_size * c.num_unrollings * (gates * H + V)
    needed = 4 * (4 * weights + 8 * activations)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > memory:
        raise UserError(f"--num-nodes {H} with --batch-size {c.batch_size} and --num-unrollings {c.num_unrollings} "
                        f"needs about {needed / 2**30:,.0f} GiB, more than the {memory / 2**30:,.0f} GiB of memory "
                        "here; lower them", exit_code=2)


def book_documents(config):
    """`--doc-order book`: per step, the documents the book's printed run trained on (its GRU run for the GRU,
    its main notebook's LSTM run otherwise; `book-lstm` or `book-gru` names the run), the first
    `docs_per_step` of each step's 10."""
    return replay_printed_documents(printed_documents(printed_run(config.doc_order, config.cell)), config,
                                    f"--doc-order {config.doc_order} replays the book's")


def replay_printed_documents(printed, config, replays):
    """The first `docs_per_step` documents of each of the first `num_steps` printed steps (`printed`: a list of
    document-id lists), after checking that the run asks for no more steps or documents than were printed and
    reads every file they name; `replays` begins the error line ("--doc-order book replays the book's")."""
    if config.num_steps > len(printed) or config.docs_per_step > len(printed[0]):
        raise UserError(f"{replays} {len(printed)} steps of {len(printed[0])} documents: --num-steps "
                        f"{config.num_steps} and --docs-per-step {config.docs_per_step} must not exceed them",
                        exit_code=2)
    highest = max(max(step) for step in printed[:config.num_steps])
    if highest >= config.num_files:
        raise UserError(f"--doc-order {config.doc_order} trains on document {highest} (file {highest + 1:03d}.txt): "
                        f"it needs --num-files 100 (got {config.num_files})", exit_code=2)
    return [step[:config.docs_per_step] for step in printed[:config.num_steps]]


def validate(session, model, valid_gens, steps_per_document):
    """loop.md step 3: 50 single steps over each validation document, perplexity over the 500 bigrams."""
    valid_loss = 0.0
    for gen in valid_gens:
        for _ in range(steps_per_document // 2):
            inputs, labels = gen.unroll_ids()
            valid_loss += float(session.run(model.valid_perplexity_without_exp,     # float64, as numpy 1 summed
                                            model.valid_feed(inputs[0, 0], labels[0, 0])))
        session.run(model.reset_valid_state)
        gen.reset_indices()
    return float(np.exp(valid_loss / (steps_per_document * len(valid_gens) // 2)))


STATE_KEYS = {"step": int, "iteration": int, "decay_count": int, "min_perplexity": (int, float), "rng": list,
              "cursors": list, "history": list}
# Options a resumed book run takes from the command line: more (or fewer) steps, and its stories in a new
# place (checked against corpus_fingerprint.json).
EXTENDABLE = ("num_steps", "stories_dir")


def check_state(state):
    """A state file the loop can continue from (raises ValueError naming the field otherwise)."""
    for key, kinds in STATE_KEYS.items():
        if not isinstance(state.get(key), kinds):
            raise ValueError(f"field {key!r} is missing or of the wrong type")


class Trainer:
    """One run: a corpus, a graph, a session and the loop's state, in a run folder.

    `given`: the options of the command line (config field -> value); a resumed run keeps its config.json,
    with those of EXTENDABLE replaced and the others checked against it (rundir.RunDir.for_training)."""

    def __init__(self, config, run_dir, resume=False, given=None, log=print):
        self.log = log
        self.run = RunDir.for_training(config.recipe, run_dir, resume, config.to_dict(), given or {},
                                       extendable=EXTENDABLE)
        self.config = config = Config.from_dict(self.run.config, source=self.run.path / "config.json")
        saved_vocab = None
        if resume:
            saved_vocab = self.run.vocab({"bigrams": list})["bigrams"]
        # A resumed run must read its own stories (check_stories, by fingerprint); whether they were the book's
        # files was checked when it started and is recorded in its corpus_fingerprint.json.
        self.corpus = load_corpus(config.stories_dir, config.num_files, reverse_dictionary=saved_vocab,
                                  allow_other_corpus=config.allow_other_corpus or resume,
                                  warn=(lambda message: None) if resume else None)
        if resume:
            self.check_stories()
        self.train_gens, self.valid_gens = split_documents(self.corpus, config)
        self.book_order = None if config.doc_order == "random" else book_documents(config)
        self.model = BookModel(config, self.corpus.vocabulary_size)
        self.session = tf1.Session(graph=self.model.graph, config=session_config())
        self.rng = np.random.RandomState(config.seed)
        self.plateau = Plateau(config.decay_threshold)
        self.step = 0                 # steps completed
        self.iteration = 0            # training iterations completed (seeds the dropout masks)
        self.history = []             # one dict per completed step
        state = None
        if resume:
            state = self.run.restore_latest(self.session, self.model.saver, self.model.saved_variables, warn=log,
                                            check_state=check_state)
            if state is None:
                log(f"No usable checkpoint in {self.run.ckpt}: starting {self.run.path} from step 0")
        if state is None:
            self.session.run(self.model.init)
            counts = [self.corpus.counter.get(b, 0) for b in self.corpus.reverse_dictionary]
            counts[0] = sum(n for b, n in self.corpus.counter.items() if b not in self.corpus.dictionary)
            self.run.write_files(config=config.to_dict(), corpus_fingerprint=fingerprint(self.corpus),
                                 vocab={"bigrams": self.corpus.reverse_dictionary, "counts": counts})
            self.run.best.mkdir(exist_ok=True)
            self.run.discard_after(0)
        else:
            self._load_state(state)
            self.run.discard_after(self.step)
            log(f"Resumed {self.run.path} after step {self.step} of {config.num_steps}")
        self.events = tf1.summary.FileWriter(str(self.run.path / "events"),
                                             graph=self.model.graph if state is None else None)
        if state is not None:
            self.restart_events()

    def check_stories(self):
        """A resumed run reads the stories it was trained on, wherever they are now: the same fingerprint."""
        path = self.run.path / "corpus_fingerprint.json"
        if not path.exists():                      # run folders written before the fingerprint existed
            return
        saved = read_json_object(path)
        if not same_stories(json.loads(json.dumps(fingerprint(self.corpus))), saved):
            raise UserError(f"{self.config.stories_dir} does not hold the stories {self.run.path} was trained on "
                            f"(they differ from {path}); give --stories-dir the folder it was trained on",
                            exit_code=2)

    # ------------------------------------------------------------ state
    def _state(self):
        return {"step": self.step, "iteration": self.iteration,
                "decay_count": self.plateau.decay_count, "min_perplexity": self.plateau.min_perplexity,
                "rng": rng_state(self.rng), "cursors": [g.cursor.tolist() for g in self.train_gens],
                "history": self.history}

    def _load_state(self, state):
        self.step, self.iteration = state["step"], state["iteration"]
        self.plateau = Plateau(self.config.decay_threshold, state["decay_count"], state["min_perplexity"])
        set_rng_state(self.rng, state["rng"])
        for gen, cursor in zip(self.train_gens, state["cursors"]):
            gen.cursor = np.array(cursor, dtype=np.int64)
        self.history = state["history"]

    # ------------------------------------------------------------ the loop
    def train(self):
        c, m, session = self.config, self.model, self.session
        if self.step >= c.num_steps:
            self.log(f"{self.run.path} has already trained {self.step} of {c.num_steps} steps")
            return self.history
        iterations_per_step = c.docs_per_step * c.steps_per_document
        bigrams_per_iteration = c.num_unrollings * c.batch_size
        self.log(f"Training {c.recipe} ({c.cell}, {c.graph} graph) in {self.run.path}: steps {self.step + 1}-"
                 f"{c.num_steps}, {iterations_per_step} iterations each, vocabulary {self.corpus.vocabulary_size}")
        run_started = time.monotonic()
        first_step = self.step
        while self.step < c.num_steps:
            step_started = time.monotonic()
            learning_rate = float(session.run(m.learning_rate))
            # Drawn in both orders, so that the seed's other draws (the stories) stay the same.
            doc_ids = self.rng.permutation(c.num_files)[:c.docs_per_step]
            if self.book_order:
                doc_ids = self.book_order[self.step]
            bar = progress_bar(iterations_per_step, f"step {self.step + 1}/{c.num_steps}")
            average_loss = 0.0
            for doc_id in doc_ids:
                for _ in range(c.steps_per_document):
                    inputs, labels = self.train_gens[doc_id].unroll_ids()
                    _, _, perplexity = session.run([m.optimizer, m.loss, m.train_perplexity_without_exp],
                                                   m.train_feed(inputs, labels, self.iteration))
                    average_loss += float(perplexity)     # in float64, as numpy 1 summed the book's
                    self.iteration += 1
                    if bar is not None:
                        bar.update()
                if c.reset_train_state:
                    session.run(m.reset_train_state)
            if bar is not None:
                bar.close()
            train_seconds = time.monotonic() - step_started
            average_loss /= iterations_per_step
            valid_perplexity = self.validate()
            reduced = self.plateau.update(valid_perplexity)
            if reduced:
                session.run(m.inc_gstep)
            story = self.story()
            self.step += 1
            seconds = time.monotonic() - step_started
            self.history.append({"step": self.step, "train_perplexity": float(np.exp(average_loss)),
                                 "valid_perplexity": valid_perplexity, "learning_rate": learning_rate,
                                 "seconds": round(seconds, 3), "average_loss": float(average_loss),
                                 "learning_rate_reduced": int(reduced), "documents": [int(d) for d in doc_ids],
                                 "sample": story})
            self._save(valid_perplexity)
            row = self.history[-1]
            self.log(f"step {self.step}/{c.num_steps}  train perplexity {row['train_perplexity']:.2f}  "
                     f"valid perplexity {valid_perplexity:.2f}  learning rate {learning_rate:.6f}  "
                     f"{iterations_per_step * bigrams_per_iteration / train_seconds:,.0f} bigrams/s  "
                     + eta(run_started, self.step - first_step, c.num_steps - first_step)
                     + ("  (learning rate halved)" if reduced else ""))
            self.log("  " + story.replace("\n", " ")[:160] + " ...")
        self.events.close()
        return self.history

    def validate(self):
        return validate(self.session, self.model, self.valid_gens, self.config.steps_per_document)

    def story(self):
        """loop.md step 5: a random bigram of a random document, then `chars_in_segment` top-3 draws."""
        c = self.config
        document = self.corpus.data_list[self.rng.randint(0, c.num_files)]
        window = c.start_window or len(document)
        first = int(document[self.rng.randint(0, window)])
        ids = generate_ids(self.session, self.model, first, c.chars_in_segment, sample_top3, self.rng)
        self.session.run(self.model.reset_test_state, {self.model.reset_seed: [c.seed, self.step]})
        return self.corpus.decode([first] + ids)

    # ------------------------------------------------------------ files
    def _save(self, valid_perplexity):
        best = self.run.best_info()
        if best is None or valid_perplexity < best["valid_perplexity"]:
            self.run.save_best(self.session, self.model.saver, self.step, valid_perplexity)
        self.run.save_step(self.session, self.model.saver, self.step, self._state(), self.config.keep_last)
        self.write_reports()
        self.write_summary(self.history[-1])
        self.events.flush()

    def restart_events(self):
        """A resumed run's events file starts with a SessionLog START at the restored step, which makes
        TensorBoard drop the earlier files' events from that step on (steps trained after the checkpoint by the
        session that was stopped, and trained again now); the restored step's own figures follow it again."""
        self.events.add_session_log(tf1.SessionLog(status=tf1.SessionLog.START), self.step)
        if self.history:
            self.write_summary(self.history[-1])
        self.events.flush()

    def write_summary(self, row):
        summary = tf1.Summary(value=[tf1.Summary.Value(tag=tag, simple_value=row[key]) for tag, key in (
            ("perplexity/train", "train_perplexity"), ("perplexity/valid", "valid_perplexity"),
            ("learning_rate", "learning_rate"))])
        self.events.add_summary(summary, row["step"])

    def write_reports(self):
        write_csv(self.run.path / "metrics.csv", METRICS_COLUMNS, self.history)
        write_atomic(self.run.path / "samples.txt", "".join(
            f"=== step {row['step']} (valid perplexity {row['valid_perplexity']:.2f}) ===\n{row['sample']}\n\n"
            for row in self.history))

    def close(self):
        self.session.close()


def train(config, run_dir, resume=False, given=None, log=print):
    """Train a recipe in `run_dir` (None: a new checkpoints/<recipe>-<time>); Ctrl-C or `kill` stops cleanly
    with the last checkpoint intact and says how to continue. Returns (history, run folder)."""
    trainer = Trainer(config, run_dir, resume=resume, given=given, log=log)
    try:
        with trainer.run.interruptible(trainer.config.num_steps):
            return trainer.train(), trainer.run.path
    finally:
        trainer.close()


def perplexity_of(session, model, ids):
    """Perplexity the model assigns to an id sequence, fed through the valid subgraph from a zero state."""
    session.run(model.reset_valid_state)
    total = 0.0
    for current, following in zip(ids[:-1], ids[1:]):
        total += float(session.run(model.valid_perplexity_without_exp, model.valid_feed(current, following)))
    session.run(model.reset_valid_state)
    return math.exp(total / max(len(ids) - 1, 1))
