"""The command line as a reader meets it: every command and option explained in --help, the main job taking
the download options, generate's --no-repeat-ngram checked at the edge."""
import argparse
import dataclasses

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
    with pytest.raises(SystemExit):
        _generate_args("--sampler", "beam", "--no-repeat-ngram", "0")
