"""Command line: `python reproduce/main.py [all|download|train|generate|compare|bench|study|evaluate] ...`.

With no subcommand it runs the main job (`all`): download the stories if needed, train the `book` recipe,
generate a story from the best checkpoint, score it on the stories the book never read (101-209) and
compare the run with what the book printed.
"""
import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):          # run as `python reproduce/main.py`: make `reproduce` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import reproduce  # noqa: E402,F401  (sets TensorFlow's environment before anything imports it)
from reproduce import compare, bench, study, evaluate, heldout  # noqa: E402
from reproduce.argtypes import positive, seed, story_count, story_numbers  # noqa: E402
from reproduce.classics import add_train_arguments as add_classics_arguments, refuse_comparison  # noqa: E402
from reproduce.config import STORIES_ENV, stories_default  # noqa: E402
from reproduce.download import download_stories  # noqa: E402
from reproduce.errors import UserError, report_errors, say_now  # noqa: E402
from reproduce.files import write_output  # noqa: E402
from reproduce.recipes import (RECIPES, SAMPLERS, GenerateOptions, add_train_arguments,  # noqa: E402
                               check_generate_options, refuse_unused_train_options)
from reproduce.rundir import RunDir, unstarted_folders_removed  # noqa: E402
from reproduce.session import threads_wanted  # noqa: E402

# The subcommands whose module parses and runs them (`add_arguments(parser)`, `run(args)`).
MODULE_COMMANDS = {"compare": compare, "bench": bench, "study": study, "evaluate": evaluate}


TOP_LEVEL_FLAGS = ("--debug",)        # the options before the command (none takes a value)


class _Parser(argparse.ArgumentParser):
    def error(self, message):                      # one line, exit status 2
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def add_story_source_arguments(parser):
    """--base-url and --stories-dir: where the stories come from and go, for `download` and the main job."""
    parser.add_argument("--base-url", help="a mirror of the book's story site (env GRIMM_BASE_URL)")
    parser.add_argument("--stories-dir", default=stories_default(), help=f"default: stories (env {STORIES_ENV})")


def build_parser():
    parser = _Parser(prog="python reproduce/main.py")
    parser.add_argument(*TOP_LEVEL_FLAGS, action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    main_job = commands.add_parser("all", help="the main job (the default): download, train book, generate, compare")
    main_job.add_argument("--run-dir", help="run folder (default: checkpoints/book-<time>)")
    main_job.add_argument("--graph", choices=("fast", "faithful"), help="default: fast (a resumed run: its own)")
    add_story_source_arguments(main_job)

    download = commands.add_parser("download", help="download the Grimm stories")
    add_story_source_arguments(download)
    which = download.add_mutually_exclusive_group()
    which.add_argument("--num-files", type=story_count, default=100, help="001.txt ... NNN.txt (default 100)")
    which.add_argument("--files", type=story_numbers, help="story numbers of the site's 209, e.g. 101-209 or 7,12,30-40")
    download.add_argument("--max-bytes", type=positive(int), help="refuse a file larger than this (default 4 MiB)")
    download.add_argument("--allow-other-corpus", action="store_true", help="keep files that differ from the book's")

    train = commands.add_parser("train", help="train a recipe, writing checkpoints, metrics and samples")
    train.add_argument("--recipe", choices=list(RECIPES),
                       help="default: book; with --resume, the recipe of the run in --run-dir")
    train.add_argument("--run-dir", help="run folder (default: checkpoints/<recipe>-<time>)")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    train.add_argument("--download", action="store_true", help="download missing stories (the text) first")
    add_train_arguments(train)                     # one option per field of the recipes' typed configs
    add_classics_arguments(train)                  # the neighbouring classics' own options

    generate = commands.add_parser("generate", help="write a story from a checkpoint")
    generate.add_argument("--checkpoint", required=True, help="a run folder (its best checkpoint; a classic's: "
                                                              "its newest) or a checkpoint prefix such as "
                                                              "RUN/ckpt/model-12")
    generate.add_argument("--length", type=int, help="bigrams to generate (default 500; the classics: their own; "
                                                     "at most 100,000)")
    generate.add_argument("--seed", type=seed, help="seed of the random draws: the primer when --prime is not "
                                                    "given, and the sampler's (default: the run's --seed)")
    generate.add_argument("--prime", help="text to start from (default: a random training bigram)")
    generate.add_argument("--sampler", help=f"one of {', '.join(SAMPLERS)}; default: the recipe's (top3, the "
                                            "book's; the classics: their article's). beam ranks by joint "
                                            "probability, and on the book recipe's LSTM that method, not a defect, "
                                            "writes mostly spaces (at --length 1000 over 20 seeds: 46%% spaces, "
                                            "longest run a median 611 characters; top3 21%%, beam-book 19%%, the "
                                            "stories 18.5%%) because after two bigrams of spaces the LSTM gives a "
                                            "third 0.92 (the stories 0.55); --no-repeat-ngram 3 ends such runs")
    generate.add_argument("--temperature", type=positive(float), help="--sampler temperature: default 1.0")
    generate.add_argument("--beam-length", type=positive(int), help="the beam samplers: default 5")
    generate.add_argument("--beam-neighbors", type=positive(int), help="the beam samplers: default 5")
    generate.add_argument("--no-repeat-ngram", type=positive(int), metavar="N",
                          help="the beam samplers: no beam repeats its last N bigrams (the primer's included) "
                               "immediately; default: off")
    generate.add_argument("--output", help="also write the story to this file")
    generate.add_argument("--report", metavar="FILE", help="aesop-word, aesop-context: also write what is measured "
                                                           "of the story (JSON) to this file")
    generate.add_argument("--graph", choices=("fast", "faithful"), help="default: the graph the run trained with")

    for name, module in MODULE_COMMANDS.items():
        module.add_arguments(commands.add_parser(name, help=module.__doc__.strip().splitlines()[0]))
    parser.description = (f"Chapter 8 of Natural Language Processing with TensorFlow (Ganegedara, 2018). The "
                          f"commands: {', '.join(commands.choices)} (each with its --help). With no command, "
                          "the main job (all): download the stories if needed, train the book recipe, generate a "
                          "story, compare the run with the book.")
    return parser


def cmd_download(args):
    extra = {"max_bytes": args.max_bytes} if args.max_bytes else {}
    download_stories(args.stories_dir, args.num_files, base_url=args.base_url, numbers=args.files,
                     allow_other_corpus=args.allow_other_corpus, **extra)


def _recipe_of_run(run_dir):
    """The recipe named in RUN_DIR/config.json, or None when there is no readable one."""
    try:
        config = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return config.get("recipe") if isinstance(config, dict) else None


def cmd_train(args):
    if args.recipe is None:
        args.recipe = (_recipe_of_run(args.run_dir) if args.resume and args.run_dir else None) or "book"
    refuse_unused_train_options(args)
    return RECIPES[args.recipe].train(args)


def cmd_generate(args):
    refuse_comparison(args.checkpoint)             # a folder of runs: says which it holds
    run = RunDir.find(args.checkpoint)[0]
    recipe = RECIPES.get(run.read_config()["recipe"])
    if recipe is None:
        raise UserError(f"{args.checkpoint}: a run of recipe {run.read_config()['recipe']!r}, which is not one of "
                        f"{', '.join(RECIPES)}; its config.json may be damaged", exit_code=2)
    text = recipe.generate(check_generate_options(args, recipe), run)
    print(text)
    if args.output:
        write_output(args.output, text)
        print(f"(written to {args.output})", file=sys.stderr)


def cmd_all(args):
    """The main job: the `book` recipe trained on the stories (downloaded if missing) in --run-dir, else in the
    newest unfinished checkpoints/book-* run, else in a new one; a story from its best checkpoint; its held-out
    perplexity on the site's stories 101-209; the comparison with the book."""
    book = RECIPES["book"]
    run_dir = args.run_dir or RunDir.newest_unfinished(book.name)
    resume = run_dir is not None and (Path(run_dir) / "config.json").exists()
    options = {field.name: None for field in book.config_class.option_fields()}      # not given: the recipe's
    train_args = argparse.Namespace(**dict(options, recipe=book.name, run_dir=run_dir, resume=resume, download=True,
                                           stories_dir=args.stories_dir, base_url=args.base_url, graph=args.graph,
                                           main_job=True))
    run_path = book.train(train_args)
    story_path = run_path / "story.txt"
    story = book.generate(GenerateOptions(str(run_path), book.samplers[0]), RunDir(run_path))
    write_output(story_path, story)
    print("\nA story from the best checkpoint:\n" + story + "\n")
    scored = heldout.main_job(run_path, train_args.stories_dir, train_args.base_url)
    compare.compare_runs([run_path])
    say_now()                               # the checkpoints used, before the closing lines
    print(run_folder_listing(run_path))
    print(heldout.closing_line(scored))


def run_folder_listing(path):
    """`Run folder: PATH` and what it holds (its hidden lock left out), its files first, then its folders."""
    entries = sorted((entry for entry in Path(path).iterdir() if not entry.name.startswith(".")),
                     key=lambda entry: (entry.is_dir(), entry.name))
    names = [entry.name + ("/ (TensorBoard)" if entry.name == "events" else "/" if entry.is_dir() else "")
             for entry in entries]
    lines = [[]]
    for name in names:                    # lines of about 100 characters, a name never cut
        if lines[-1] and sum(len(n) + 2 for n in lines[-1]) + len(name) > 96:
            lines.append([])
        lines[-1].append(name)
    return f"Run folder: {path}\n  " + ",\n  ".join(", ".join(line) for line in lines)


def with_the_main_job(argv):
    """`argv` with `all` put in where no command is named (`main.py --stories-dir DIR` is `main.py all
    --stories-dir DIR`): the top-level options take no value, so the first word after them is the command."""
    argv = list(argv)
    first = next((i for i, word in enumerate(argv) if word not in TOP_LEVEL_FLAGS), len(argv))
    if first == len(argv) or (argv[first].startswith("-") and argv[first] not in ("-h", "--help")):
        argv.insert(first, "all")
    return argv


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(with_the_main_job(argv))
    handlers = {"download": cmd_download, "train": cmd_train, "generate": cmd_generate, "all": cmd_all}
    # compare, bench, evaluate: their module runs them
    handler = handlers.get(args.command) or MODULE_COMMANDS[args.command].run

    def action():
        threads_wanted()                    # $REPRODUCE_THREADS checked before any work, as --threads is
        with unstarted_folders_removed():   # a train refused before its config.json leaves no folder behind
            handler(args)
    return report_errors(action, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
