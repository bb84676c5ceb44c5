"""Odd story files get the policy `reproduce.data.read_story` documents: a normalisation or a one-line error.

Policy: a regular file of at most MAX_STORY_BYTES (anything else is refused before a byte is read);
UTF-8 only; a byte-order mark is dropped; CRLF and CR become LF; an empty file, a NUL byte or
non-UTF-8 bytes are errors naming the file (and the byte offset where one exists).
"""
import os
import signal
import socket

import pytest

from reproduce.data import MAX_STORY_BYTES, load_corpus, read_story, to_bigrams
from reproduce.errors import UserError


@pytest.fixture
def no_hang():
    """A read that blocks (a FIFO without a writer) fails the test after 10 s instead of hanging it."""
    def hung(signum, frame):
        raise AssertionError("the read blocked")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def story(tmp_path, raw, name="001.txt"):
    path = tmp_path / name
    path.write_bytes(raw)
    return path


def read_error(path):
    with pytest.raises(UserError) as caught:
        read_story(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


@pytest.mark.parametrize("raw", [b"", b"  \n\r\n\t"])
def test_an_empty_file_is_an_error(tmp_path, raw):
    message = read_error(story(tmp_path, raw))
    assert "empty" in message and "download" in message


def test_a_binary_file_is_an_error_at_its_first_nul_byte(tmp_path):
    message = read_error(story(tmp_path, b"Once upon a time\x00\x01\x02"))
    assert "binary" in message and "byte offset 16" in message


def test_latin1_bytes_are_an_error_naming_the_byte_and_its_offset(tmp_path):
    message = read_error(story(tmp_path, "Es war einmal ein König.\n".encode("latin-1")))
    assert "not UTF-8" in message and "0xf6" in message and "byte offset 19" in message and "iconv" in message


def test_the_offset_is_counted_in_the_file_even_after_a_byte_order_mark(tmp_path):
    message = read_error(story(tmp_path, b"\xef\xbb\xbfK\xf6nig"))
    assert "byte offset 4" in message


def test_a_utf8_byte_order_mark_is_dropped(tmp_path):
    assert read_story(story(tmp_path, "\ufeffOnce upon a time, Grüße\n".encode("utf-8"))) == \
        "once upon a time, grüße\n"


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_windows_and_old_mac_line_endings_become_lf(tmp_path, newline):
    assert read_story(story(tmp_path, newline.join([b"The Frog", b"KING", b""]))) == "the frog\nking\n"


def test_a_real_story_saved_with_windows_line_endings_and_a_bom_reads_as_the_original(tmp_path, grimm_dir):
    original = (grimm_dir / "002.txt").read_bytes()
    converted = story(tmp_path, b"\xef\xbb\xbf" + original.replace(b"\n", b"\r\n"))
    assert read_story(converted) == read_story(grimm_dir / "002.txt")
    assert to_bigrams(read_story(converted)) == to_bigrams(original.decode("ascii").lower())


def test_a_folder_is_refused_as_not_a_regular_file(tmp_path):
    (tmp_path / "001.txt").mkdir()
    assert read_error(tmp_path / "001.txt").endswith(": a folder, not a regular file; replace it with the story file")


def test_a_fifo_is_refused_without_blocking(tmp_path, no_hang):
    os.mkfifo(tmp_path / "001.txt")
    assert "a FIFO (named pipe), not a regular file" in read_error(tmp_path / "001.txt")


def test_a_symlink_to_a_device_is_refused_without_reading_it(tmp_path, no_hang):
    (tmp_path / "001.txt").symlink_to("/dev/zero")                 # read() would never end
    assert "a character device (through a symbolic link), not a regular file" in read_error(tmp_path / "001.txt")


def test_a_symlink_to_a_fifo_and_a_socket_are_refused(tmp_path, no_hang):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "001.txt").symlink_to(tmp_path / "pipe")
    assert "a FIFO (named pipe) (through a symbolic link)" in read_error(tmp_path / "001.txt")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "002.txt"))
        assert "a socket, not a regular file" in read_error(tmp_path / "002.txt")


def test_a_symlink_to_a_real_story_is_read(tmp_path, grimm_dir):
    (tmp_path / "001.txt").symlink_to(grimm_dir / "001.txt")
    assert read_story(tmp_path / "001.txt") == read_story(grimm_dir / "001.txt")


def test_a_file_larger_than_the_cap_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "001.txt"
    with open(path, "wb") as sparse:                               # no disk used: a hole of MAX + 1 bytes
        sparse.truncate(MAX_STORY_BYTES + 1)
    message = read_error(path)
    assert f"{MAX_STORY_BYTES + 1} bytes, larger than the {MAX_STORY_BYTES} a story may have" in message


def test_a_broken_symlink_is_a_one_line_error(tmp_path):
    (tmp_path / "001.txt").symlink_to(tmp_path / "gone.txt")
    assert "cannot read it (No such file or directory)" in read_error(tmp_path / "001.txt")


def test_load_corpus_names_a_fifo_among_good_stories(tmp_path, grimm_dir, no_hang):
    story(tmp_path, (grimm_dir / "001.txt").read_bytes(), "001.txt")
    os.mkfifo(tmp_path / "002.txt")
    with pytest.raises(UserError, match=r"002\.txt: a FIFO \(named pipe\), not a regular file"):
        load_corpus(tmp_path, 2)


def test_load_corpus_with_fewer_files_than_asked_is_a_one_line_error(tmp_path, grimm_dir):
    for name in ("001.txt", "002.txt", "003.txt"):
        story(tmp_path, (grimm_dir / name).read_bytes(), name)
    with pytest.raises(UserError) as caught:
        load_corpus(tmp_path, 5)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path}: 2 of the 5 stories asked for are missing (first: 004.txt)")
    assert "download" in message and "--num-files 5" in message


def test_load_corpus_names_the_odd_file_among_good_ones(tmp_path, grimm_dir):
    story(tmp_path, (grimm_dir / "001.txt").read_bytes(), "001.txt")
    story(tmp_path, b"caf\xe9\n", "002.txt")
    with pytest.raises(UserError, match=r"002\.txt: not UTF-8 text \(byte 0xe9 at byte offset 3\)"):
        load_corpus(tmp_path, 2)
