"""The command line as a reader meets it: every command and option explained in --help, the main job taking
the download options, generate's --no-repeat-ngram checked at the edge."""
import argparse
import dataclasses
from pathlib import Path

import pytest

from http_server import StoryServer
from reproduce import main
from reproduce.errors import UserError
from reproduce.recipes import RECIPES, check_generate_options


def _commands(parser):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_the_top_level_help_names_every_command_and_every_option_has_a_help():
    parser = main.build_parser()
    commands = _commands(parser)
    assert set(commands) >= {"all", "download", "train", "generate", "compare", "bench", "study", "evaluate"}
    description = parser.description
    for name in commands:
        assert f" {name}," in description or f" {name} (" in description, name
    for name, command in {"(top level)": parser, **commands}.items():
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help and action.help != argparse.SUPPRESS, f"{name} {action.option_strings} has no help"
        text = command.format_help().lower()
        for words in ("the issue", "previous release", "this machine", "this session", "last session", "used to",
                      "no longer"):
            assert words not in " ".join(text.split()), (name, words)


@pytest.mark.parametrize("argv", [["--base-url", "http://mirror/grimm/", "--stories-dir", "here"],
                                  ["all", "--base-url", "http://mirror/grimm/", "--stories-dir", "here"]])
def test_the_main_job_takes_the_download_options_with_or_without_all(argv):
    args = main.build_parser().parse_args(main.with_the_main_job(argv))
    assert (args.command, args.base_url, args.stories_dir) == ("all", "http://mirror/grimm/", "here")
    debug = main.build_parser().parse_args(main.with_the_main_job(["--debug", *argv]))
    assert debug.debug and debug.command == "all"


def test_the_main_job_downloads_from_a_mirror_into_stories_dir_and_lists_its_folder_once(grimm_dir, tmp_path,
                                                                                         monkeypatch, capsys):
    book = RECIPES["book"]
    tiny = dataclasses.replace(book, values={**book.values, **book.config_class.tiny(num_steps=2).__dict__,
                                             "recipe": "book"})
    tiny = dataclasses.replace(tiny, values={k: v for k, v in tiny.values.items() if k != "stories_dir"})
    monkeypatch.setattr(main, "RECIPES", {**RECIPES, "book": tiny})
    monkeypatch.setenv("GRIMM_BASE_URL", "http://127.0.0.1:9/not-this-one/")       # the option wins
    monkeypatch.chdir(tmp_path)
    stories, run = tmp_path / "my stories", tmp_path / "run"
    with StoryServer(grimm_dir) as server:
        assert main.main(["--base-url", server.url, "--stories-dir", str(stories), "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    names = sorted(p.name for p in stories.iterdir())
    assert names == [f"{n:03d}.txt" for n in range(1, 13)]                          # the tiny config's 12
    assert all((stories / name).read_bytes() == (grimm_dir / name).read_bytes() for name in names)
    assert out.count("Run folder:") == 1
    listing = out[out.index("Run folder:"):]
    for name in ("config.json", "metrics.csv", "story.txt", "report.md", "ckpt/", "events/ (TensorBoard)"):
        assert name in listing, (name, listing)
    assert ".lock" not in listing and (run / "story.txt").is_file() and not (tmp_path / "stories").exists()


def _generate_args(*options):
    return main.build_parser().parse_args(["generate", "--checkpoint", "run", *options])


def test_no_repeat_ngram_is_an_option_of_the_beam_samplers_only():
    for sampler in ("beam", "beam-book"):
        options = check_generate_options(_generate_args("--sampler", sampler, "--no-repeat-ngram", "3"),
                                         RECIPES["book"])
        assert options.no_repeat_ngram == 3
    assert check_generate_options(_generate_args("--sampler", "beam"), RECIPES["book"]).no_repeat_ngram is None
    with pytest.raises(UserError) as refused:
        check_generate_options(_generate_args("--no-repeat-ngram", "3"), RECIPES["book"])
    assert refused.value.exit_code == 2 and "--no-repeat-ngram is used by --sampler beam and beam-book only" \
        in str(refused.value)
    for option, value in (("--no-repeat-ngram", "0"), ("--temperature", "0")):       # argparse's one line
        with pytest.raises(SystemExit) as stopped:
            _generate_args("--sampler", "beam", option, value)
        assert stopped.value.code == 2


# ---------------------------------------------------------------- figures a reader understands
def _captured_figures(monkeypatch, *modules):
    figures = {}
    for module in modules:
        monkeypatch.setattr(module, "save_figure", lambda figure, path: figures.__setitem__(Path(path).name, figure))
    return figures


def _legend_texts(axes):
    return [text.get_text() for text in axes.get_legend().get_texts()]


def test_compare_names_each_measure_in_words_with_its_unit_and_the_books_configuration(tiny_book_run, tmp_path,
                                                                                       monkeypatch):
    from reproduce import compare, curves, text_metrics
    figures = _captured_figures(monkeypatch, compare, curves)          # the curves figure is curves.py's
    report = compare.compare_runs([tiny_book_run[0]], tmp_path)
    panels = [axes for axes in figures["story_measures.png"].axes if axes.get_title()]
    assert len(panels) == len(text_metrics.MEASURES)
    for axes, name in zip(panels, text_metrics.MEASURES):
        title, unit = text_metrics.MEASURE_AXES[name]
        assert " ".join(axes.get_title().split()) == title and axes.get_ylabel() == unit
        assert "_" not in axes.get_title() and "(" in unit
    assert set(report["story"]["our_median"]) == set(text_metrics.MEASURES)           # the code names stay in JSON
    labels = _legend_texts(figures["curves.png"].axes[0])
    assert "book LSTM (printed; dropout 0, the main notebook's run): valid" in labels, labels


def test_evaluate_tells_its_pooled_and_valid_lines_apart(tmp_path, monkeypatch):
    from reproduce import evaluate
    figures = _captured_figures(monkeypatch, evaluate)
    rows = [{"story": "101.txt", "perplexity": 30.0}, {"story": "102.txt", "perplexity": 40.0},
            {"story": "all", "perplexity": 35.0}]
    evaluate.plot_story_perplexity(tmp_path / "evaluate.png", rows, 20.0, 7, "a title")
    labels = _legend_texts(figures["evaluate.png"].axes[0])
    pooled, valid = (next(label for label in labels if label.startswith(kind)) for kind in ("pooled", "valid"))
    assert "2 stories scored here" in pooled and "35.00" in pooled
    assert "validation" in valid and "step 7" in valid and "20.00" in valid


def test_generate_with_no_repeat_ngram_from_a_run(tiny_book_run):
    from conftest import run_here
    from reproduce.sample import primer_bigrams
    stories = {}
    for option in ([], ["--no-repeat-ngram", "2"]):
        result = run_here("generate", "--checkpoint", tiny_book_run[0], "--sampler", "beam", "--length", "60",
                          "--seed", "1", "--prime", "the king", *option)
        assert result.returncode == 0, result.stderr
        stories[bool(option)] = result.stdout.rstrip("\n")
    def repeats(story):                         # where 2 bigrams repeat the 2 right before them
        bigrams = primer_bigrams(story)
        assert len(bigrams) == 4 + 60
        return [i for i in range(2, len(bigrams) - 1) if bigrams[i:i + 2] == bigrams[i - 2:i]]
    assert repeats(stories[False]) and not repeats(stories[True])
    refused = run_here("generate", "--checkpoint", tiny_book_run[0], "--no-repeat-ngram", "2")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
