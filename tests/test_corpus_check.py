"""The verified corpus: the stories are checked against the SHA-256 of the files the book read, before training.

The manifest (reproduce/golden/book_ch8_stories_sha256sums.txt) covers 001.txt ... 100.txt; the tests
build modified copies of a few real stories in tmp folders. Also here: the seed's range at parse time.
"""
import argparse
import hashlib
import json
import shutil

import pytest

from conftest import SHARED, TINY
from reproduce.argtypes import SEED_MAX, seed
from reproduce.data import CORPUS_MANIFEST, book_story_hashes, check_corpus, fingerprint, load_corpus
from reproduce.errors import UserError

ADVICE = "results will not be comparable: download it again, or pass --allow-other-corpus"


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def copies(tmp_path, grimm_dir):
    """A folder of 001.txt ... 012.txt copied from the real stories."""
    stories = tmp_path / "stories"
    stories.mkdir()
    for i in range(1, 13):
        shutil.copy(grimm_dir / f"{i:03d}.txt", stories / f"{i:03d}.txt")
    return stories


def edit(path):
    """One word changed: still a good story file, no longer the book's."""
    path.write_bytes(path.read_bytes().replace(b"the", b"teh", 1))
    return path


def test_the_manifest_holds_the_100_stories_the_book_read(grimm_dir):
    hashes = book_story_hashes()
    assert sorted(hashes) == [f"{i:03d}.txt" for i in range(1, 101)]
    assert all(hashes[name] == sha256(grimm_dir / name) for name in hashes)
    sums = SHARED / "corpora" / "SHA256SUMS"
    if sums.exists():                                             # the data set's own list agrees
        listed = dict(line.split()[::-1] for line in sums.read_text().splitlines() if "grimm/" in line)
        assert all(listed[f"grimm/{name}"] == digest for name, digest in hashes.items())
    assert CORPUS_MANIFEST.parent.name == "golden"


def test_the_real_stories_are_the_books_and_the_fingerprint_records_it(grimm_dir):
    corpus = load_corpus(grimm_dir, 12)
    assert corpus.check == {"manifest": CORPUS_MANIFEST.name, "checked": 12, "differing": [], "not_in_manifest": 0,
                            "allowed_other_corpus": False, "verdict": "book"}
    assert fingerprint(corpus)["corpus_check"] == corpus.check


def test_a_story_that_differs_is_named_in_one_line_before_anything_is_built(copies):
    changed = edit(copies / "005.txt")
    with pytest.raises(UserError) as caught:
        load_corpus(copies, 12)
    book = book_story_hashes()["005.txt"]
    assert str(caught.value) == (f"{changed} differs from the file the book read (sha256 {sha256(changed)[:16]}…, "
                                 f"the book's {book[:16]}…); {ADVICE}")
    assert caught.value.exit_code == 1


def test_several_that_differ_are_counted(copies):
    for name in ("003.txt", "007.txt", "009.txt"):
        edit(copies / name)
    with pytest.raises(UserError) as caught:
        load_corpus(copies, 12)
    message = str(caught.value)
    assert message.startswith(f"{copies / '003.txt'} differs") and message.endswith(
        f"{ADVICE} (2 more differ: 007.txt, 009.txt)")


def test_allow_other_corpus_reads_them_with_a_warning_and_records_the_verdict(copies, capsys):
    edit(copies / "005.txt")
    corpus = load_corpus(copies, 12, allow_other_corpus=True)
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith(f"warning: {copies / '005.txt'} differs from the file the book")
    assert warning[0].endswith("continuing (--allow-other-corpus)")
    assert fingerprint(corpus)["corpus_check"] == {
        "manifest": CORPUS_MANIFEST.name, "checked": 12, "differing": ["005.txt"], "not_in_manifest": 0,
        "allowed_other_corpus": True, "verdict": "other"}


def test_files_beyond_100_have_no_manifest_entry_and_are_not_checked(tmp_path):
    verdict = check_corpus({tmp_path / "150.txt": "0" * 64, tmp_path / "209.txt": "1" * 64})
    assert verdict["verdict"] == "unchecked" and verdict["checked"] == 0 and verdict["not_in_manifest"] == 2


def test_an_empty_stories_folder_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as caught:
        load_corpus("", 12)
    assert caught.value.exit_code == 2 and "empty name" in str(caught.value)


def test_training_refuses_a_story_that_differs_and_trains_with_allow_other_corpus(copies, tmp_path, capsys):
    from reproduce.main import main
    edit(copies / "005.txt")
    refused = tmp_path / "refused"
    assert main(["train", "--stories-dir", str(copies), *TINY, "--num-steps", "1", "--run-dir", str(refused)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {copies / '005.txt'} differs from the file the book read (sha256 "
                   f"{sha256(copies / '005.txt')[:16]}…, the book's {book_story_hashes()['005.txt'][:16]}…); {ADVICE}"]
    assert not refused.exists() or not any(refused.iterdir())       # nothing written

    run = tmp_path / "other"
    assert main(["train", "--stories-dir", str(copies), *TINY, "--num-steps", "1", "--run-dir", str(run),
                 "--allow-other-corpus"]) == 0
    recorded = json.loads((run / "corpus_fingerprint.json").read_text())["corpus_check"]
    assert recorded["verdict"] == "other" and recorded["differing"] == ["005.txt"]
    assert json.loads((run / "config.json").read_text())["allow_other_corpus"] is True


# ---------------------------------------------------------------- the seed, checked at parse time
@pytest.mark.parametrize("text", ["-1", str(SEED_MAX + 1), "1.5", "seven", ""])
def test_a_seed_outside_0_to_2_32_minus_1_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        seed(text)


@pytest.mark.parametrize("command", [["train"], ["generate", "--checkpoint", "RUN"]])
def test_train_and_generate_refuse_a_seed_out_of_range_in_one_line(command, capsys):
    from reproduce.main import build_parser
    assert build_parser().parse_args([*command, "--seed", str(SEED_MAX)]).seed == SEED_MAX
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args([*command, "--seed", str(SEED_MAX + 1)])
    err = capsys.readouterr().err.strip().splitlines()
    assert caught.value.code == 2 and len(err) == 1
    assert f"argument --seed: must be in 0 ... {SEED_MAX} (got {SEED_MAX + 1})" in err[0]
