"""Downloads against a local server that misbehaves on purpose: every failure is one line, nothing partial stays.

The server (tests/http_server.py) serves the real stories on 127.0.0.1; timeouts, retries and
back-off are passed small so that the whole file runs in seconds.
"""
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, run_cli
from http_server import HTML, OK, SHORT, STALL, Slow, StoryServer, refused_url
from reproduce.download import BASE_URL_ENV, download_stories
from reproduce.errors import UserError

FAST = dict(retries=2, backoff=0.01, timeout=(2, 2), log=lambda message: None)
SHORT_WAIT = dict(retries=1, timeout=(2, 0.5))         # for the tests where the server never answers in time


@pytest.fixture
def server(grimm_dir):
    with StoryServer(grimm_dir) as s:
        yield s


@pytest.fixture
def stories(tmp_path):
    return tmp_path / "stories"


def assert_only_whole_stories(folder, source, names):
    """`folder` holds exactly `names`, each byte-identical to the source: no partial, temporary or extra file."""
    assert sorted(os.listdir(folder)) == sorted(names)
    for name in names:
        assert (folder / name).read_bytes() == (source / name).read_bytes(), name


def download_error(folder, base_url, num_files=3, **options):
    with pytest.raises(UserError) as caught:
        download_stories(folder, num_files, base_url=base_url, **{**FAST, **options})
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_full_download_matches_the_source_bytes(server, stories, grimm_dir):
    paths = download_stories(stories, 4, base_url=server.url, **FAST)
    assert [p.name for p in paths] == ["001.txt", "002.txt", "003.txt", "004.txt"]
    assert_only_whole_stories(stories, grimm_dir, ["001.txt", "002.txt", "003.txt", "004.txt"])
    assert dict(server.requests) == {"001.txt": 1, "002.txt": 1, "003.txt": 1, "004.txt": 1}


def test_the_books_files_present_are_kept_without_a_request_and_others_fetched_again(server, stories, grimm_dir):
    stories.mkdir()
    (stories / "001.txt").write_text("my own copy\n")                # not the book's file: fetched again
    (stories / "002.txt").write_bytes((grimm_dir / "002.txt").read_bytes())
    (stories / "003.txt").write_bytes(b"")                         # empty: fetched again
    logged = []
    download_stories(stories, 3, base_url=server.url, **{**FAST, "log": logged.append})
    assert dict(server.requests) == {"001.txt": 1, "003.txt": 1}
    assert f"{stories / '001.txt'} differs from the file the book read: fetching it again" in logged
    assert_only_whole_stories(stories, grimm_dir, ["001.txt", "002.txt", "003.txt"])

    download_stories(stories, 3, base_url=server.url, **FAST)      # all there: no request at all
    assert dict(server.requests) == {"001.txt": 1, "003.txt": 1}


def test_allow_other_corpus_keeps_a_file_that_differs_with_a_warning(server, stories, grimm_dir):
    stories.mkdir()
    (stories / "001.txt").write_text("my own copy\n")
    logged = []
    download_stories(stories, 2, base_url=server.url, allow_other_corpus=True, **{**FAST, "log": logged.append})
    assert dict(server.requests) == {"002.txt": 1}
    assert (stories / "001.txt").read_text() == "my own copy\n"
    warning = next(line for line in logged if line.startswith("warning:"))
    assert f"{stories / '001.txt'} differs from the file the book read (sha256 " in warning
    assert "kept (--allow-other-corpus)" in warning


def test_environment_variable_points_at_a_mirror(server, stories, grimm_dir, monkeypatch):
    monkeypatch.setenv(BASE_URL_ENV, server.url.rstrip("/"))      # the missing slash is added
    download_stories(stories, 2, **FAST)
    assert_only_whole_stories(stories, grimm_dir, ["001.txt", "002.txt"])


def test_base_url_wins_over_the_environment_variable(server, stories, grimm_dir, monkeypatch):
    monkeypatch.setenv(BASE_URL_ENV, refused_url())
    download_stories(stories, 2, base_url=server.url, **FAST)
    assert_only_whole_stories(stories, grimm_dir, ["001.txt", "002.txt"])


def test_command_line_uses_the_environment_variable(server, stories, grimm_dir):
    result = run_cli("download", "--stories-dir", stories, "--num-files", "2", env={BASE_URL_ENV: server.url},
                     timeout=120)
    assert result.returncode == 0, result.stderr
    assert server.url in result.stdout
    assert_only_whole_stories(stories, grimm_dir, ["001.txt", "002.txt"])


def test_404_names_the_file_keeps_what_was_fetched_and_a_rerun_fetches_only_the_rest(server, stories, grimm_dir):
    server.script("003.txt", 404)
    message = download_error(stories, server.url, num_files=4)
    assert message.startswith(f"{server.url}003.txt: HTTP 404")
    assert "--base-url" in message and "2 of 4 stories" in message
    assert_only_whole_stories(stories, grimm_dir, ["001.txt", "002.txt"])
    assert server.requests["003.txt"] == 1                        # a 404 is not retried
    assert server.requests["004.txt"] == 0                        # the download stops at the first failure

    server.script("003.txt", OK)
    server.requests.clear()
    download_stories(stories, 4, base_url=server.url, **FAST)
    assert dict(server.requests) == {"003.txt": 1, "004.txt": 1}
    assert_only_whole_stories(stories, grimm_dir, ["001.txt", "002.txt", "003.txt", "004.txt"])


def test_command_line_failure_is_one_line_without_a_traceback(server, stories, grimm_dir):
    server.script("003.txt", 404)
    result = run_cli("download", "--base-url", server.url, "--stories-dir", stories, "--num-files", "3",
                     timeout=120)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "003.txt" in lines[0] and "404" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert_only_whole_stories(stories, grimm_dir, ["001.txt", "002.txt"])


def test_500_twice_then_200_is_retried_and_succeeds(server, stories, grimm_dir):
    server.script("002.txt", 500, 500, OK)
    download_stories(stories, 3, base_url=server.url, **FAST)
    assert server.requests["002.txt"] == 3
    assert_only_whole_stories(stories, grimm_dir, ["001.txt", "002.txt", "003.txt"])


def test_500_for_ever_gives_up_after_the_retries(server, stories, grimm_dir):
    server.script("002.txt", 503)
    message = download_error(stories, server.url)
    assert "002.txt: HTTP 503" in message and "after 3 tries" in message and "try again later" in message
    assert server.requests["002.txt"] == 3
    assert_only_whole_stories(stories, grimm_dir, ["001.txt"])


def test_a_response_slower_than_the_timeout_gives_up_after_the_retries(server, stories, grimm_dir):
    server.script("002.txt", Slow(30))
    started = time.monotonic()
    message = download_error(stories, server.url, **SHORT_WAIT)
    assert time.monotonic() - started < 10
    assert "002.txt: timed out after 2 tries" in message
    assert server.requests["002.txt"] == 2
    assert_only_whole_stories(stories, grimm_dir, ["001.txt"])


def test_a_body_that_stalls_half_way_gives_up_and_saves_nothing(server, stories, grimm_dir):
    server.script("002.txt", STALL)
    message = download_error(stories, server.url, **SHORT_WAIT)
    assert "002.txt: the transfer broke off (timed out), after 2 tries; nothing was saved" in message
    assert_only_whole_stories(stories, grimm_dir, ["001.txt"])


def test_a_body_shorter_than_its_content_length_is_detected_and_nothing_saved(server, stories, grimm_dir):
    server.script("002.txt", SHORT)
    message = download_error(stories, server.url)
    size = (grimm_dir / "002.txt").stat().st_size
    assert f"before the {size} bytes it announced" in message and "nothing was saved" in message
    assert server.requests["002.txt"] == 3                        # a broken body is fetched again too
    assert_only_whole_stories(stories, grimm_dir, ["001.txt"])


def test_a_body_cut_short_once_is_fetched_again(server, stories, grimm_dir):
    server.script("002.txt", SHORT, OK)
    download_stories(stories, 3, base_url=server.url, **FAST)
    assert server.requests["002.txt"] == 2
    assert_only_whole_stories(stories, grimm_dir, ["001.txt", "002.txt", "003.txt"])


def test_an_html_page_with_status_200_is_rejected(server, stories, grimm_dir):
    server.script("002.txt", HTML)
    message = download_error(stories, server.url)
    assert "002.txt: the server sent an HTML page, not a story" in message
    assert_only_whole_stories(stories, grimm_dir, ["001.txt"])


@pytest.mark.parametrize("body, complaint", [
    (b"\n<!DOCTYPE html>\n<html><body>Not found</body></html>\n", "an HTML page"),   # served as text/plain
    (b"   \n\n", "an empty file"),
    (b"Once upon\x00a time\n", "binary data"),
])
def test_a_mirror_file_that_is_not_a_story_is_rejected(tmp_path, grimm_dir, stories, body, complaint):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "001.txt").write_bytes((grimm_dir / "001.txt").read_bytes())
    (mirror / "002.txt").write_bytes(body)
    with StoryServer(mirror) as server:
        message = download_error(stories, server.url, num_files=2)
    assert f"002.txt: the server sent {complaint}" in message
    assert_only_whole_stories(stories, grimm_dir, ["001.txt"])


def test_connection_refused(stories):
    url = refused_url()
    message = download_error(stories, url)
    assert message.startswith(f"{url}001.txt: connection refused after 3 tries")
    assert "--base-url" in message
    assert os.listdir(stories) == []


@pytest.mark.parametrize("url", ["ftp://example.org/grimm/", "www.example.org/grimm"])
def test_a_base_url_that_is_not_http_is_a_usage_error(stories, url):
    message = download_error(stories, url)
    assert message.startswith(f"{url}: not an http(s) URL")
    with pytest.raises(UserError) as caught:
        download_stories(stories, 1, base_url=url, **FAST)
    assert caught.value.exit_code == 2


def test_an_empty_base_url_is_a_usage_error_not_the_books_site(stories):
    with pytest.raises(UserError) as caught:
        download_stories(stories, 1, base_url="", **FAST)
    assert caught.value.exit_code == 2 and "not an http(s) URL" in str(caught.value)


@pytest.mark.parametrize("url, problem", [
    ("http://", "no host name in it"),
    ("https:///grimm/", "no host name in it"),
    ("http://127.0.0.1:99999/", "not a valid URL"),
    ("http://exa mple.org/grimm/", "it holds a space"),
    ("http://[::1/", "not a valid URL"),
])
def test_a_malformed_url_is_a_usage_error_at_once(stories, url, problem):
    started = time.monotonic()
    with pytest.raises(UserError) as caught:
        download_stories(stories, 1, base_url=url, **{**FAST, "backoff": 1})
    assert time.monotonic() - started < 1                          # no retries, no back-off
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith(f"{url}: {problem}") and "--base-url" in str(caught.value)


def test_the_command_line_refuses_a_url_without_host_in_one_line_exit_2(tmp_path):
    result = run_cli("download", "--base-url", "http://", "--stories-dir", tmp_path / "s", timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: http://: no host name in it; give --base-url (or GRIMM_BASE_URL) as http://host/folder/, "
        "the folder holding 001.txt, 002.txt, ..."]
    assert not (tmp_path / "s").exists()


def test_a_stories_folder_that_is_a_file_is_a_one_line_error(tmp_path, server):
    blocker = tmp_path / "stories"
    blocker.write_text("not a folder")
    message = download_error(blocker, server.url)
    assert message.startswith(f"{blocker}: cannot use it as the stories folder")


def test_a_download_killed_mid_file_leaves_nothing_a_rerun_would_keep(server, stories, grimm_dir):
    """SIGKILL cannot be cleaned up after: the temporary file stays hidden, and the next run removes it."""
    server.script("002.txt", STALL, OK)
    process = subprocess.Popen([sys.executable, str(REPO / "reproduce" / "main.py"), "download", "--base-url",
                                server.url, "--stories-dir", str(stories), "--num-files", "3"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not list(stories.glob(".002.txt.*.part")) and time.monotonic() < deadline:
            assert process.poll() is None, "the download ended before it was killed"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    left = sorted(os.listdir(stories))
    assert len(left) == 2 and left[0].startswith(".002.txt.") and left[0].endswith(".part"), left
    assert left[1] == "001.txt"

    download_stories(stories, 3, base_url=server.url, **FAST)
    assert_only_whole_stories(stories, grimm_dir, ["001.txt", "002.txt", "003.txt"])
