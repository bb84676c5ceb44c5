"""Command line: `python reproduce/main.py [download|train|generate|compare|bench] ...`.

With no subcommand it runs the main job: download the stories if needed, train the `book` recipe,
generate a story from the best checkpoint and compare the run with what the book printed.
"""
import argparse
import importlib
import json
import sys
from pathlib import Path

if __package__ in (None, ""):          # run as `python reproduce/main.py`: make `reproduce` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import reproduce  # noqa: E402,F401  (sets TensorFlow's environment before anything imports it)
from reproduce.argtypes import positive, seed, story_count, story_numbers  # noqa: E402
from reproduce.errors import UserError, report_errors  # noqa: E402

from reproduce.book import STORIES_ENV, stories_default  # noqa: E402


class _Parser(argparse.ArgumentParser):
    def error(self, message):                      # one line, exit status 2
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser():
    from reproduce import classics
    from reproduce.recipes import add_train_arguments, registry
    from reproduce.sample import SAMPLERS

    recipes = list(registry())

    parser = _Parser(prog="python reproduce/main.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    main_job = commands.add_parser("all", help="the main job (the default): download, train book, generate, compare")
    main_job.add_argument("--run-dir", help="run folder (default: checkpoints/book-<time>)")
    main_job.add_argument("--graph", choices=("fast", "faithful"), help="default: fast (a resumed run: its own)")

    download = commands.add_parser("download", help="download the Grimm stories")
    download.add_argument("--base-url", help="a mirror of the book's story site (env GRIMM_BASE_URL)")
    download.add_argument("--stories-dir", default=stories_default(), help=f"default: stories (env {STORIES_ENV})")
    which = download.add_mutually_exclusive_group()
    which.add_argument("--num-files", type=story_count, default=100, help="001.txt ... NNN.txt (default 100)")
    which.add_argument("--files", type=story_numbers, help="story numbers of the site's 209, e.g. 101-209 or 7,12,30-40")
    download.add_argument("--max-bytes", type=positive(int), help="refuse a file larger than this (default 4 MiB)")
    download.add_argument("--allow-other-corpus", action="store_true", help="keep files that differ from the book's")

    train = commands.add_parser("train", help="train a recipe, writing checkpoints, metrics and samples")
    train.add_argument("--recipe", choices=recipes,
                       help="default: book; with --resume, the recipe of the run in --run-dir")
    train.add_argument("--run-dir", help="run folder (default: checkpoints/<recipe>-<time>)")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    train.add_argument("--download", action="store_true", help="download missing stories (the text) first")
    add_train_arguments(train)                     # one option per field of the recipes' typed configs
    classics.add_train_arguments(train)            # the neighbouring classics' own options

    generate = commands.add_parser("generate", help="write a story from a checkpoint")
    generate.add_argument("--checkpoint", required=True, help="a run folder (its best checkpoint) or a checkpoint "
                                                              "prefix such as RUN/ckpt/model-12")
    generate.add_argument("--length", type=int, help="bigrams to generate (default 500; the classics: their own; "
                                                     "at most 100,000)")
    generate.add_argument("--seed", type=seed)
    generate.add_argument("--prime", help="text to start from (default: a random training bigram)")
    generate.add_argument("--sampler", help=f"one of {', '.join(SAMPLERS)}; default: the recipe's (top3, the "
                                            "book's; the classics: their article's)")
    generate.add_argument("--temperature", type=positive(float), help="--sampler temperature: default 1.0")
    generate.add_argument("--beam-length", type=positive(int), help="the beam samplers: default 5")
    generate.add_argument("--beam-neighbors", type=positive(int), help="the beam samplers: default 5")
    generate.add_argument("--output", help="also write the story to this file")
    generate.add_argument("--graph", choices=("fast", "faithful"), help="default: the graph the run trained with")

    for name in ("compare", "bench", "study", "evaluate"):
        module = importlib.import_module(f"reproduce.{name}")
        module.add_arguments(commands.add_parser(name, help=module.__doc__.strip().splitlines()[0]))
    return parser


def cmd_download(args):
    from reproduce.download import download_stories
    extra = {"max_bytes": args.max_bytes} if args.max_bytes else {}
    download_stories(args.stories_dir, args.num_files, base_url=args.base_url, numbers=args.files,
                     allow_other_corpus=args.allow_other_corpus, **extra)


def unfinished_run(recipe):
    """The newest `checkpoints/<recipe>-*` run that stopped before its last step and that no process is
    training, if any."""
    from reproduce.rundir import RunDir
    return RunDir.newest_unfinished(recipe)


def _recipe_of_run(run_dir):
    """The recipe named in RUN_DIR/config.json, or None when there is no readable one."""
    try:
        config = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return config.get("recipe") if isinstance(config, dict) else None


def cmd_train(args):
    from reproduce.recipes import refuse_unused_train_options, registry

    if args.recipe is None:
        args.recipe = (_recipe_of_run(args.run_dir) if args.resume and args.run_dir else None) or "book"
    refuse_unused_train_options(args)
    return registry()[args.recipe].train(args)


def cmd_generate(args):
    from reproduce.classics import refuse_comparison
    from reproduce.files import write_output
    from reproduce.recipes import check_generate_options, registry
    from reproduce.rundir import RunDir

    refuse_comparison(args.checkpoint)             # a folder of runs: says which it holds
    run = RunDir.find(args.checkpoint)[0]
    recipe = registry().get(run.read_config()["recipe"])
    if recipe is None:
        raise UserError(f"{args.checkpoint}: a run of recipe {run.read_config()['recipe']!r}, which this version "
                        "does not know; its config.json may be damaged", exit_code=2)
    check_generate_options(args, recipe.name)
    text = recipe.generate(args, run)
    print(text)
    if args.output:
        write_output(args.output, text)
        print(f"(written to {args.output})", file=sys.stderr)


def cmd_all(args):
    """The main job."""
    from reproduce.compare import compare_runs
    from reproduce.config import recipe_config
    from reproduce.download import download_stories
    from reproduce.sample import generate
    from reproduce.train import train

    stories_dir = stories_default()
    download_stories(stories_dir, 100)
    run_dir = args.run_dir or unfinished_run("book")
    resume = run_dir is not None and (Path(run_dir) / "config.json").exists()
    given = {"stories_dir": stories_dir, **({"graph": args.graph} if args.graph else {})}
    config = recipe_config("book", **given)
    history, run_path = train(config, run_dir, resume=resume, given=given)
    story_path = run_path / "story.txt"
    story = generate(run_path, length=500, seed=config.seed, output=story_path)
    print("\nA story from the best checkpoint:\n" + story + "\n")
    compare_runs([run_path])
    print(f"Run folder: {run_path}\n  metrics.csv, samples.txt, story.txt, best/, ckpt/, events/ (TensorBoard)")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:                           # no subcommand: the main job
        args = parser.parse_args(list(argv) + ["all"])
    handlers = {"download": cmd_download, "train": cmd_train, "generate": cmd_generate, "all": cmd_all}
    # compare, bench, evaluate: their module runs them
    handler = handlers.get(args.command) or importlib.import_module(f"reproduce.{args.command}").run

    def action():
        from reproduce.rundir import unstarted_folders_removed
        from reproduce.session import threads_wanted
        threads_wanted()                    # $REPRODUCE_THREADS checked before any work, as --threads is
        with unstarted_folders_removed():   # a train refused before its config.json leaves no folder behind
            handler(args)
    return report_errors(action, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
