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
from http_server import ENDLESS, HTML, OK, SHORT, STALL, Huge, Slow, StoryServer, Trickle, refused_url
from reproduce.data import MAX_STORY_BYTES
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


def main_in_process(capsys, *args):
    """The command line in this process (a fresh one costs seconds of TensorFlow start-up): (status, stdout, stderr)."""
    from reproduce.main import main
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


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
    ("http://a..b/", "'a..b' is not a valid host name"),
])
def test_a_malformed_url_is_a_usage_error_at_once(stories, url, problem):
    started = time.monotonic()
    with pytest.raises(UserError) as caught:
        download_stories(stories, 1, base_url=url, **{**FAST, "backoff": 1})
    assert time.monotonic() - started < 1                          # no retries, no back-off
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith(f"{url}: {problem}") and "--base-url" in str(caught.value)


def test_the_command_line_refuses_a_url_without_host_in_one_line_exit_2(tmp_path, capsys):
    status, _, stderr = main_in_process(capsys, "download", "--base-url", "http://", "--stories-dir", tmp_path / "s")
    assert status == 2
    assert stderr.strip().splitlines() == [
        "error: http://: no host name in it; give --base-url (or GRIMM_BASE_URL) as http://host/folder/, "
        "the folder holding 001.txt, 002.txt, ..."]
    assert not (tmp_path / "s").exists()


def test_a_stories_folder_that_is_a_file_is_a_one_line_error(tmp_path, server):
    blocker = tmp_path / "stories"
    blocker.write_text("not a folder")
    message = download_error(blocker, server.url)
    assert message.startswith(f"--stories-dir {blocker}: a file, not a folder")


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


# ---------------------------------------------------------------- bounds
def test_an_endless_body_stops_at_the_cap_and_leaves_nothing(server, stories, grimm_dir):
    server.script("002.txt", ENDLESS)
    started = time.monotonic()
    message = download_error(stories, server.url, max_bytes=200_000)
    assert time.monotonic() - started < 10
    assert message.startswith(f"{server.url}002.txt: the body goes on past 200000 bytes, more than the 200000 "
                              "a story may have; nothing was saved")
    assert "--max-bytes" in message
    assert server.requests["002.txt"] == 1                        # not retried: it is not a story
    assert_only_whole_stories(stories, grimm_dir, ["001.txt"])


def test_the_default_cap_stops_an_endless_body_at_a_few_megabytes(server, stories, grimm_dir):
    server.script("001.txt", ENDLESS)
    message = download_error(stories, server.url, num_files=1)
    assert f"past {MAX_STORY_BYTES} bytes" in message and MAX_STORY_BYTES <= 8 * 2 ** 20
    assert os.listdir(stories) == []


def test_an_announced_size_past_the_cap_is_refused_before_the_body_is_read(server, stories, grimm_dir):
    server.script("002.txt", Huge(50 * 2 ** 20))
    message = download_error(stories, server.url)
    assert message.startswith(f"{server.url}002.txt: the server announces {50 * 2 ** 20} bytes, more than the "
                              f"{MAX_STORY_BYTES} a story may have; nothing was saved")
    assert_only_whole_stories(stories, grimm_dir, ["001.txt"])


def test_max_bytes_raises_the_cap(server, stories, grimm_dir):
    size = (grimm_dir / "047.txt").stat().st_size                # the largest story, 44 KB
    with pytest.raises(UserError, match="more than the 40000 a story may have"):
        download_stories(stories, numbers=[47], base_url=server.url, max_bytes=40_000, **FAST)
    download_stories(stories, numbers=[47], base_url=server.url, max_bytes=size, **FAST)
    assert_only_whole_stories(stories, grimm_dir, ["047.txt"])


def test_the_command_line_caps_an_endless_body_and_exits_1_in_one_line(server, stories, capsys):
    server.script("001.txt", ENDLESS)
    status, _, stderr = main_in_process(capsys, "download", "--base-url", server.url, "--stories-dir", stories,
                                        "--num-files", "1", "--max-bytes", "100000")
    assert status == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {server.url}001.txt: the body goes on past 100000")
    assert os.listdir(stories) == []


def test_a_story_in_the_folder_that_is_a_fifo_is_refused_in_one_line(server, stories):
    stories.mkdir()
    os.mkfifo(stories / "001.txt")
    message = download_error(stories, server.url, num_files=1)
    assert message == f"{stories / '001.txt'}: a FIFO (named pipe), not a regular file; replace it with the story file"
    assert server.requests["001.txt"] == 0


def test_a_broken_symlink_in_the_folder_is_replaced_by_the_story(server, stories, grimm_dir):
    stories.mkdir()
    (stories / "001.txt").symlink_to(stories / "moved-away.txt")
    download_stories(stories, 1, base_url=server.url, **FAST)
    assert not (stories / "001.txt").is_symlink()
    assert_only_whole_stories(stories, grimm_dir, ["001.txt"])


def test_an_empty_stories_folder_name_is_refused_and_nothing_is_written(server, tmp_path, capsys, monkeypatch):
    with pytest.raises(UserError) as caught:
        download_stories("", 1, base_url=server.url, **FAST)
    assert caught.value.exit_code == 2 and "empty name" in str(caught.value)
    monkeypatch.chdir(tmp_path)
    for args, env in (((), ""), (("--stories-dir", ""), "stories")):
        monkeypatch.setenv("GRIMM_STORIES_DIR", env)
        status, _, stderr = main_in_process(capsys, "download", "--base-url", server.url, "--num-files", "1", *args)
        assert status == 2
        assert stderr.strip().splitlines() == [
            'error: the stories folder is an empty name (--stories-dir "" or an empty GRIMM_STORIES_DIR); '
            "give a folder, e.g. --stories-dir stories"]
        assert os.listdir(tmp_path) == []
    assert server.requests["001.txt"] == 0


# ---------------------------------------------------------------- the book's files, by SHA-256
def mirror_with(tmp_path, grimm_dir, changed=None, extra=()):
    """A mirror of 001-100 (symlinks to the real files), `changed` {name: bytes} replacing some, and the `extra`
    stories 101+ (symlinks to the site's files, in the corpora's grimm-unseen)."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for path in sorted(grimm_dir.glob("[0-9][0-9][0-9].txt")):
        (mirror / path.name).symlink_to(path)
    for name, body in (changed or {}).items():
        (mirror / name).unlink(missing_ok=True)
        (mirror / name).write_bytes(body)
    for number in extra:
        (mirror / f"{number:03d}.txt").symlink_to(grimm_dir.parent / "grimm-unseen" / f"{number:03d}.txt")
    return mirror


def test_a_mirror_file_that_differs_from_the_books_is_refused_and_nothing_saved(tmp_path, grimm_dir, stories):
    original = (grimm_dir / "002.txt").read_bytes()
    mirror = mirror_with(tmp_path, grimm_dir, {"002.txt": original.replace(b"the", b"teh", 1)})
    with StoryServer(mirror) as server:
        message = download_error(stories, server.url)
        assert message.startswith(f"{server.url}002.txt differs from the file the book read (sha256 ")
        assert "nothing was saved: check --base-url, or keep it with --allow-other-corpus" in message
        assert server.requests["002.txt"] == 1
        assert_only_whole_stories(stories, grimm_dir, ["001.txt"])

        logged = []
        download_stories(stories, 3, base_url=server.url, allow_other_corpus=True, **{**FAST, "log": logged.append})
    assert (stories / "002.txt").read_bytes() == original.replace(b"the", b"teh", 1)
    assert any(line.startswith(f"warning: {stories / '002.txt'} differs from the file the book read")
               for line in logged)


def test_files_101_to_209_into_any_folder_from_the_command_line(tmp_path, grimm_dir, capsys):
    mirror = mirror_with(tmp_path, grimm_dir, extra=range(101, 210))
    target = tmp_path / "deep" / "unseen"
    with StoryServer(mirror) as server:
        status, stdout, stderr = main_in_process(capsys, "download", "--base-url", server.url, "--stories-dir", target,
                                                 "--files", "101-209")
        assert status == 0, stderr
        assert sorted(os.listdir(target)) == [f"{n}.txt" for n in range(101, 210)]
        assert (target / "150.txt").read_bytes() == (mirror / "150.txt").read_bytes()
        assert "109 stories (101.txt ... 209.txt)" in stdout
        assert sum(server.requests.values()) == 109


def test_files_lists_and_ranges_fetch_exactly_those(tmp_path, grimm_dir, stories):
    mirror = mirror_with(tmp_path, grimm_dir, extra=range(101, 210))
    with StoryServer(mirror) as server:
        paths = download_stories(stories, numbers=[7, 12, 30, 31, 32, 205], base_url=server.url, **FAST)
    assert [p.name for p in paths] == ["007.txt", "012.txt", "030.txt", "031.txt", "032.txt", "205.txt"]
    assert_only_whole_stories(stories, mirror, [p.name for p in paths])


@pytest.mark.parametrize("files", ["0-3", "210", "5-3", "1-", "a,b", "7,,9", ""])
def test_files_outside_1_to_209_or_malformed_are_a_usage_error(tmp_path, files):
    from reproduce.main import build_parser
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["download", "--stories-dir", str(tmp_path), "--files", files])
    assert caught.value.code == 2


def test_files_and_num_files_together_are_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main_in_process(capsys, "download", "--files", "1-3", "--num-files", "3", "--stories-dir", tmp_path)
    stderr = capsys.readouterr().err
    assert caught.value.code == 2 and "not allowed with argument" in stderr
    assert len(stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- file modes
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_downloaded_files_follow_the_umask(server, stories, umask, mode):
    previous = os.umask(umask)
    try:
        download_stories(stories, 2, base_url=server.url, **FAST)
    finally:
        os.umask(previous)
    assert [oct((stories / n).stat().st_mode & 0o777) for n in ("001.txt", "002.txt")] == [oct(mode)] * 2


# ---------------------------------------------------------------- signals and concurrent downloads
def start_download(server, stories, *more):
    return subprocess.Popen([sys.executable, str(REPO / "reproduce" / "main.py"), "download", "--base-url",
                             server.url, "--stories-dir", str(stories), *more],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for_part(process, stories, pattern=".002.txt.*.part"):
    deadline = time.monotonic() + 60
    while not list(stories.glob(pattern)):
        assert process.poll() is None, "the download ended before its temporary file appeared"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return list(stories.glob(pattern))


def test_two_downloads_into_one_folder_leave_each_other_alone_and_sigterm_cleans_up(server, stories, grimm_dir):
    """The first (a process) stalls on 002.txt; a second download meanwhile must not delete the first's
    temporary file. SIGTERM then ends the first in one line, exit 143, its temporary file removed."""
    server.script("002.txt", STALL, OK)
    first = start_download(server, stories, "--num-files", "3")
    try:
        [first_part] = wait_for_part(first, stories)
        assert f".{first.pid}." in first_part.name
        download_stories(stories, 4, base_url=server.url, **FAST)      # the second, in this process
        assert first_part.exists()                                      # the first's file, untouched
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        _, stderr = first.communicate(timeout=30)
    assert first.returncode == 143
    assert stderr.strip().splitlines() == ["error: terminated"]
    assert_only_whole_stories(stories, grimm_dir, ["001.txt", "002.txt", "003.txt", "004.txt"])


def test_ctrl_c_mid_file_ends_in_one_line_exit_130_and_removes_the_temporary_file(server, stories, grimm_dir,
                                                                                  capsys, request):
    """SIGINT sent to this process while the command line, run here, waits on a stalled body."""
    import threading
    server.script("002.txt", STALL)
    # A suite started in the background (`pytest &`) inherits SIGINT ignored; Ctrl-C is what is tested here.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))

    def interrupt_when_the_temporary_file_appears():
        deadline = time.monotonic() + 30
        while not list(stories.glob(".002.txt.*.part")) and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)
    watcher = threading.Thread(target=interrupt_when_the_temporary_file_appears)
    watcher.start()
    status, _, stderr = main_in_process(capsys, "download", "--base-url", server.url, "--stories-dir", stories,
                                        "--num-files", "3")
    watcher.join()
    assert status == 130 and stderr.strip().splitlines() == ["error: interrupted"]
    assert_only_whole_stories(stories, grimm_dir, ["001.txt"])


def test_a_temporary_file_of_a_dead_process_is_removed_and_a_live_ones_kept(server, stories, grimm_dir):
    stories.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_part = stories / f".002.txt.{int(dead.stdout)}.0badc0de.part"
    live_part = stories / f".002.txt.{os.getppid()}.0badc0de.part"          # pytest's parent: alive
    old_style = stories / ".003.txt.k2j4_x9q.part"                          # mkstemp's, from before PIDs
    for part in (dead_part, live_part, old_style):
        part.write_bytes(b"half a story")
    download_stories(stories, 2, base_url=server.url, **FAST)
    assert not dead_part.exists() and not old_style.exists()
    assert live_part.exists()
    live_part.unlink()
    assert_only_whole_stories(stories, grimm_dir, ["001.txt", "002.txt"])


# ---------------------------------------------------------------- slow servers, odd bodies, the site's 209
def test_a_trickling_server_passes_every_read_timeout_but_not_the_deadline(server, stories, grimm_dir):
    server.script("002.txt", Trickle(0.2))              # one byte every 0.2 s, well inside the 2 s read timeout
    started = time.monotonic()
    message = download_error(stories, server.url, deadline=1.5, min_rate=0)
    assert time.monotonic() - started < 10
    assert "002.txt: not complete after 1.5 s" in message and "nothing was saved" in message
    assert_only_whole_stories(stories, grimm_dir, ["001.txt"])


def test_a_trickling_server_is_refused_below_the_minimum_rate(server, stories, grimm_dir, monkeypatch):
    monkeypatch.setattr("reproduce.download.RATE_GRACE", 0.5)
    server.script("002.txt", Trickle(0.2))
    message = download_error(stories, server.url, min_rate=100)
    assert "002.txt: arriving at " in message and "below the 100 bytes/s a download needs" in message
    assert_only_whole_stories(stories, grimm_dir, ["001.txt"])


@pytest.mark.parametrize("body", [
    b"\xef\xbb\xbf<!DOCTYPE html><html><body>Log in</body></html>\n",
    b"\xef\xbb\xbf \r\n\t<html><head><title>Portal</title></head></html>\n",
])
def test_html_after_a_byte_order_mark_and_white_space_is_refused(tmp_path, grimm_dir, stories, body):
    mirror = mirror_with(tmp_path, grimm_dir, {"101.txt": body}, extra=[])
    with StoryServer(mirror) as server:
        message = download_error(stories, server.url, numbers=[101], num_files=None)
    assert "101.txt: the server sent an HTML page, not a story" in message
    assert os.listdir(stories) == []


def test_a_story_the_reader_would_refuse_is_refused_at_download_naming_why(tmp_path, grimm_dir, stories):
    latin1 = "Es war einmal ein K\u00f6nig.\n".encode("latin-1")
    mirror = mirror_with(tmp_path, grimm_dir, {"002.txt": latin1})
    with StoryServer(mirror) as server:
        message = download_error(stories, server.url, allow_other_corpus=True)
    assert "002.txt: the server sent a file `train` and `evaluate` would refuse (not UTF-8 text (byte 0xf6 at " \
           "byte offset 19))" in message
    assert_only_whole_stories(stories, grimm_dir, ["001.txt"])


def test_a_changed_unseen_story_is_refused_like_a_changed_book_story(tmp_path, grimm_dir, stories):
    unseen = (grimm_dir.parent / "grimm-unseen" / "150.txt").read_bytes()
    mirror = mirror_with(tmp_path, grimm_dir, {"150.txt": unseen.replace(b"the", b"teh", 1)}, extra=[149])
    with StoryServer(mirror) as server:
        message = download_error(stories, server.url, numbers=[149, 150], num_files=None)
    assert message.startswith(f"{server.url}150.txt differs from the site's file (sha256 ")
    assert_only_whole_stories(stories, mirror, ["149.txt"])


def test_num_files_past_the_sites_209_is_refused_as_files_is(tmp_path, stories):
    from reproduce.main import build_parser
    for option in ("--num-files", "--files"):
        with pytest.raises(SystemExit) as caught:
            build_parser().parse_args(["download", "--stories-dir", str(tmp_path), option, "210"])
        assert caught.value.code == 2
    with pytest.raises(UserError, match="the site holds stories 1 ... 209"):
        download_stories(stories, 210, base_url="http://127.0.0.1:9/", **FAST)
    assert not stories.exists()


def test_a_full_disk_while_downloading_is_one_line_and_leaves_no_part(server, tmp_path, grimm_dir):
    disk = tmp_path / "small"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        message = download_error(disk, server.url, num_files=20)
        assert "cannot write it (no space left on device); nothing was saved: free some space" in message
        assert not [name for name in os.listdir(disk) if name.startswith(".")]
        assert all((disk / name).read_bytes() == (grimm_dir / name).read_bytes() for name in os.listdir(disk))
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
