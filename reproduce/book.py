"""The book's recipes (book, book-notebook, book-peephole, book-gru, ...) as the command line runs them.

Like every recipe module (each of classics/), it gives the registry (recipes.py) three things:
`build(config, vocabulary_size)`, the model the recipe trains; `train(args)`, a run from the parsed options of `train`;
`generate(args, run, config)`, a story from a run folder with the options of `generate`.
"""
import os

STORIES_ENV = "GRIMM_STORIES_DIR"


def stories_default():
    """Where the stories are when --stories-dir is not given: $GRIMM_STORIES_DIR, else stories/."""
    return os.environ.get(STORIES_ENV, "stories")


def build(config, vocabulary_size):
    """The book's graph for a Config (model.BookModel)."""
    from reproduce.model import BookModel
    return BookModel(config, vocabulary_size)


def train(args):
    """Train the book recipe `args.recipe` with the options given (with --resume, the run's own for the rest);
    returns the run folder."""
    from reproduce.config import recipe_config
    from reproduce.recipes import book_option_fields
    from reproduce.train import train as train_config

    given = {f.name: getattr(args, f.name) for f in book_option_fields() if getattr(args, f.name) is not None}
    stories_dir = args.stories_dir if args.stories_dir is not None else stories_default()
    config = recipe_config(args.recipe, **dict(given, stories_dir=stories_dir))
    if args.download:
        from reproduce.download import download_stories
        download_stories(config.stories_dir, config.num_files, allow_other_corpus=config.allow_other_corpus)
    _, run_path = train_config(config, args.run_dir, resume=args.resume, given=given)
    print(f"Run folder: {run_path}  (metrics.csv, samples.txt, best/, ckpt/, events/)")
    return run_path


def generate(args, run, config):
    """The story `generate` prints, from the checkpoint `args.checkpoint` names (options checked by
    recipes.check_generate_options)."""
    from reproduce.sample import generate as generate_story
    return generate_story(args.checkpoint, length=500 if args.length is None else args.length, seed=args.seed,
                          prime=args.prime, sampler=args.sampler, temperature=args.temperature,
                          beam_length=args.beam_length, beam_neighbors=args.beam_neighbors, graph=args.graph)
