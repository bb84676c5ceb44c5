"""The book's recipes (book, book-notebook, book-peephole, book-gru) as the command line runs them: the module
their entries in recipes.RECIPES name, with `build`, `train` and `generate` as every recipe module gives them."""
from reproduce.config import Config
from reproduce.download import download_stories
from reproduce.model import BookModel
from reproduce.sample import generate as generate_story
from reproduce.train import train as train_config

STORY_LENGTH = 500                     # bigrams `generate` writes when --length is not given


def build(config, vocabulary_size):
    """The book's graph for a Config (model.BookModel)."""
    return BookModel(config, vocabulary_size)


def train(args, config):
    """Train `config` (the recipe's, with the options given) in --run-dir, downloading the stories first with
    --download; with --resume, the run's own config with the options given checked against it. Returns the run
    folder. The main job's `args` also hold `main_job` (it lists the folder at its end) and `base_url`."""
    given = {f.name: getattr(args, f.name) for f in Config.option_fields() if getattr(args, f.name) is not None}
    main_job = getattr(args, "main_job", False)
    if args.download:
        download_stories(config.stories_dir, config.num_files, base_url=args.base_url if main_job else None,
                         allow_other_corpus=config.allow_other_corpus)
    _, run_path = train_config(config, args.run_dir, resume=args.resume, given=given)
    if not main_job:
        print(f"Run folder: {run_path}  (metrics.csv, samples.txt, best/, ckpt/, events/)")
    return run_path


def generate(options, run, config):
    """The story `generate` prints, from the checkpoint `options.checkpoint` names."""
    return generate_story(options.checkpoint, length=options.length or STORY_LENGTH, seed=options.seed,
                          prime=options.prime, sampler=options.sampler, temperature=options.temperature,
                          beam_length=options.beam_length, beam_neighbors=options.beam_neighbors,
                          graph=options.graph, no_repeat_ngram=options.no_repeat_ngram)
