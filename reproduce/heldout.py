"""Held-out perplexity: a book or word run's checkpoints scored on the site's stories 101-209, which no recipe
reads.

The main job downloads them into its stories folder and scores its best checkpoint; a study scores each
seed's best and last checkpoint on those present in its --stories-dir. The scoring is `evaluate`'s (each
story from a zero state, the book's perplexity, pooled over the stories). The figures go into the run
folder's `heldout.json`, which `compare` reports beside the valid perplexity and a seed's summary keeps.
A story the site or the folder lacks is named in one line and the score is over those present; the
held-out part never fails the run it scores.
"""
from pathlib import Path

from reproduce.data import SITE_STORIES, story_name
from reproduce.download import download_stories
from reproduce.errors import UserError, describe_error
from reproduce.evaluate import ScoredRun, checkpoint_step_and_valid, ranges_text
from reproduce.files import write_json
from reproduce.recipes import read_book_run
from reproduce.rundir import RunDir, read_json_object

HELDOUT_NUMBERS = tuple(range(101, SITE_STORIES + 1))
HELDOUT_TEXT = ranges_text(HELDOUT_NUMBERS)
HELDOUT_FILE = "heldout.json"
CHECKPOINT_KINDS = ("best", "last")
# what compare reads of each checkpoint's entry in heldout.json
CHECKPOINT_FIELDS = {"checkpoint": str, "step": (int, type(None)), "perplexity": (int, float),
                     "valid_perplexity": (int, float, type(None))}


def present_stories(stories_dir, num_files, log):
    """(present, missing): the numbers of 101-209 past the run's training stories (`num_files`) whose file is
    in `stories_dir`, and the others, named in one line when `log` is given."""
    folder = Path(stories_dir)
    candidates = [n for n in HELDOUT_NUMBERS if n > num_files]
    if len(candidates) < len(HELDOUT_NUMBERS) and log:
        log(f"held-out stories: {HELDOUT_NUMBERS[0]}-{num_files} left out, the run trained on them")
    present = [n for n in candidates if (folder / story_name(n)).is_file()]
    missing = [n for n in candidates if n not in present]
    if missing and log and not present:
        log(f"held-out stories: none of {ranges_text(missing)} is in {folder}/, so none is scored; `python "
            f"reproduce/main.py download --stories-dir {folder} --files {ranges_text(missing)}` fetches them")
    elif missing and log:
        log(f"held-out stories: {len(missing)} of the {len(candidates)} are not in {folder}/ "
            f"({ranges_text(missing)}); scoring the {len(present)} present")
    return present, missing


def checkpoint_name(run, prefix):
    return str(Path(prefix).resolve().relative_to(run.path.resolve()))


def score_run(run_dir, stories_dir, kinds=CHECKPOINT_KINDS, log=print, name_missing=True):
    """Score the checkpoints of `kinds` ("best", "last") of a book or word run on the held-out stories present
    in `stories_dir` (those missing named in one line with `name_missing`); write heldout.json into the run
    folder and return it (None when no story is present)."""
    run = RunDir.open(run_dir)
    scored = ScoredRun(run, "held-out scoring")
    present, missing = present_stories(stories_dir, scored.config.num_files, log if name_missing else None)
    if not present:
        return None
    stories = scored.story_ids([Path(stories_dir) / story_name(n) for n in present])
    prefixes = [run.checkpoint_for_generation(prefer_best=kind == "best") for kind in kinds]
    result = {"stories_dir": str(stories_dir), "stories": ranges_text(present), "scored": len(present),
              "missing": missing}
    log(f"held-out: scoring the {' and '.join(kinds)} checkpoint{'s' if len(kinds) > 1 else ''} on {len(present)} "
        f"stories ...")
    for kind, (prefix, rows, seconds) in zip(kinds, scored.scores(prefixes, stories, [str(n) for n in present],
                                                                  say=False)):
        name = checkpoint_name(run, prefix)
        step, valid = checkpoint_step_and_valid(run, prefix)
        pooled = rows[-1]
        result[kind] = {"checkpoint": name, "step": step, "valid_perplexity": valid,
                        "perplexity": pooled["perplexity"], scored.unit: pooled["predicted"],
                        "unk_share": pooled["unk_share"], "seconds": round(seconds, 2),
                        "per_story": {row["story"]: row["perplexity"] for row in rows[:-1]}}
        log(f"held-out: {describe(result, kind)} ({seconds:.1f} s)")
    write_json(run.path / HELDOUT_FILE, result)
    return result


def describe(heldout, kind="best"):
    """`best checkpoint best/model-24 (step 24): perplexity 21.79 on 109 stories (101-209), valid 17.53`."""
    entry = heldout[kind]
    valid = f"{entry['valid_perplexity']:.2f}" if entry["valid_perplexity"] is not None else "unknown"
    return (f"{kind} checkpoint {entry['checkpoint']} (step {entry['step']}): perplexity {entry['perplexity']:.2f} "
            f"on {heldout['scored']} stories ({heldout['stories']}), valid {valid}")


def score_safely(run_dir, stories_dir, kinds=CHECKPOINT_KINDS, log=print, name_missing=True):
    """score_run, any failure one line and None: the held-out part never fails the run it scores."""
    try:
        return score_run(run_dir, stories_dir, kinds, log, name_missing)
    except UserError as error:
        log(f"held-out: not scored: {error}")
    except Exception as error:                      # a bug here must not lose hours of training
        log(f"held-out: not scored: {describe_error(error)}")
    return None


def main_job(run_dir, stories_dir, base_url=None, log=print):
    """The main job's held-out part: stories 101-209 downloaded into `stories_dir` (those the site lacks
    named in one line), then the best checkpoint scored on those present. Returns heldout.json's dict or None;
    never raises a UserError."""
    try:
        read_book_run(RunDir.open(run_dir), "held-out scoring")
    except UserError as error:
        log(f"held-out: not scored: {error}")
        return None
    try:
        download_stories(stories_dir, numbers=list(HELDOUT_NUMBERS), base_url=base_url, missing_ok=True, log=log)
        downloaded = True                           # the stories the site lacks are named already
    except UserError as error:
        log(f"held-out stories: the download stopped: {error}")
        downloaded = False
    return score_safely(run_dir, stories_dir, ("best",), log, name_missing=not downloaded)


def closing_line(heldout):
    """The main job's last line on the held-out stories."""
    if heldout is None:
        return f"Held-out perplexity (stories {HELDOUT_TEXT}): not measured (see the held-out lines above)"
    return f"Held-out perplexity of the {describe(heldout)}"


def read_heldout(run, best_checkpoint):
    """(heldout.json of the run folder or None, a note or None): its figures are the run's when its best
    checkpoint is `best_checkpoint` (relative to the run folder), else a note says it is outdated."""
    path = run.path / HELDOUT_FILE
    if not path.is_file():
        return None, None
    what = "delete it: the main job writes it again"
    heldout = read_json_object(path, {"scored": int, "stories": str, "missing": list, "best": dict}, what=what)
    for key, kinds in CHECKPOINT_FIELDS.items():
        if not isinstance(heldout["best"].get(key), kinds):
            raise UserError(f"{path}: field 'best.{key}' is {heldout['best'].get(key)!r:.60}, not what it should be; "
                            f"{what}")
    if heldout["best"].get("checkpoint") != best_checkpoint:
        return None, (f"{HELDOUT_FILE} scores {heldout['best'].get('checkpoint')}, not the best checkpoint "
                      f"{best_checkpoint}: its held-out figures are left out")
    return heldout, None

