"""Download the book's stories with `requests`: retries, timeouts, bounds, and never a partial file on disk.

Each story is streamed into a hidden temporary file beside its target (`.001.txt.<pid>.<random>.part`)
and renamed only once it is complete, is a story the reader takes (not HTML, UTF-8: data.story_refusal)
and has the SHA-256 of the site's file (golden manifests: 001-100 as the book read them, 101-209), so an
interrupted or failed download leaves either the whole file or nothing. A body is cut off at `max_bytes`
(a server that never ends it cannot fill the disk), and a file must arrive within `deadline` seconds and,
after its first RATE_GRACE seconds, at `min_rate` bytes/s at least: the per-read timeout alone lets a
server sending one byte every few seconds hold a download for hours. Files already
present are kept when they are the book's (or have no manifest entry), so a re-run fetches only
what is missing or wrong. Temporary files carry the PID of their process: two downloads into one
folder never touch each other's, and one left by a killed process is removed by the next download.

Retries: urllib3 retries refused connections, timeouts and 5xx answers with exponential back-off;
a body that breaks off half-way (shorter than its Content-Length, or stalled) is fetched again by
`fetch` itself. Every failure is a one-line `UserError` naming the URL and what to do.
"""
import hashlib
import os
import secrets
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import LocationValueError
from urllib3.util.retry import Retry

from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError

from reproduce.data import (MAX_STORY_BYTES, OTHER_CORPUS_FLAG, SITE_STORIES, differs_message, read_story_bytes,
                            site_story_hashes, stories_folder, story_filenames, story_name, story_refusal)
from reproduce.errors import UserError, disk_failure, write_failed
from reproduce.files import remove_stale_temporaries
from reproduce.progress import rate_and_eta

BOOK_URL = "https://www.cs.cmu.edu/~spok/grimmtmp/"
BASE_URL_ENV = "GRIMM_BASE_URL"          # points the download at a mirror
MIRROR_HINT = "check the network, or use a mirror with --base-url"
RETRIED_STATUS = (500, 502, 503, 504)    # answers worth asking again
DEADLINE = 120.0                         # seconds a file may take in all (the book's stories are under 50 KB)
MIN_RATE = 1024                          # bytes/s a file must arrive at, on average, after RATE_GRACE seconds
RATE_GRACE = 10.0
BOM = b"\xef\xbb\xbf"


def default_base_url():
    return os.environ.get(BASE_URL_ENV) or BOOK_URL


def make_session(retries=3, backoff=0.5):
    """One session; urllib3 retries connection errors, timeouts and 5xx with exponential back-off."""
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
                  status_forcelist=RETRIED_STATUS, allowed_methods=frozenset({"GET"}),
                  raise_on_status=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class _BrokenTransfer(Exception):
    """The body broke off or came short: worth another try."""


class NotOnSite(UserError):
    """The server answered 404 or 410: it does not hold this file."""


def _looks_like_html(head):
    """Stories start with their title; an HTML page (error page, login portal) starts with a tag."""
    start = head.lstrip()
    while start.startswith(BOM):                    # a byte-order mark, then perhaps white space, then the tag
        start = start[len(BOM):].lstrip()
    start = start.lower()
    return start.startswith(b"<") and any(tag in start for tag in (b"<html", b"<!doctype html", b"<head",
                                                                    b"<body", b"<title"))


def _connection_reason(error):
    """'timed out', 'connection refused', ... from the exception requests raises after urllib3's retries."""
    cause = getattr(error.args[0], "reason", error) if error.args else error
    text = f"{error.__class__.__name__} {cause.__class__.__name__} {cause}".lower()
    if "timeout" in text or "timed out" in text:
        return "timed out"
    if "refused" in text:
        return "connection refused"
    if "resolve" in text or "name or service" in text:
        return "host name not found"
    return f"connection failed ({cause.__class__.__name__})"


def _broken_off(error, expected):
    """Why a body stopped before its end, for the message."""
    if isinstance(error, requests.exceptions.ChunkedEncodingError):     # urllib3: fewer bytes than promised
        announced = f" the {expected} bytes it announced" if expected else " the end"
        return f"the server closed the connection before{announced}"
    return f"the transfer broke off ({_connection_reason(error)})"


def _tries(retries):
    return f"after {retries + 1} tries" if retries else "after 1 try"


def _get(session, url, timeout, retries):
    """The response to a GET (after urllib3's retries), or a UserError saying why there is none."""
    tries = _tries(retries)
    try:
        return session.get(url, stream=True, timeout=timeout)
    except requests.exceptions.RetryError as e:
        raise UserError(f"{url}: the server kept failing {tries}; try again later or use a mirror "
                        "with --base-url") from e
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
        raise UserError(f"{url}: {_connection_reason(e)} {tries}; {MIRROR_HINT}") from e
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
            LocationValueError) as e:
        raise UserError(f"{url}: not a valid URL ({e}); check --base-url", exit_code=2) from e
    except requests.exceptions.RequestException as e:
        raise UserError(f"{url}: {e.__class__.__name__}: {e}") from e


class Received:
    """What one GET brought: its size, first KiB and SHA-256, and whether it is blank or holds a NUL byte."""

    def __init__(self):
        self.received, self.head, self.blank, self.binary = 0, b"", True, False
        self.sha256 = hashlib.sha256()

    def add(self, chunk):
        self.head = self.head if len(self.head) >= 1024 else self.head + chunk[:1024]
        self.blank = self.blank and not chunk.strip()
        self.binary = self.binary or b"\x00" in chunk
        self.sha256.update(chunk)
        self.received += len(chunk)


def _too_large(url, what, max_bytes):
    return UserError(f"{url}: {what}, more than the {max_bytes} a story may have; nothing was saved: this is not "
                     "a story, check --base-url (or raise --max-bytes)")


def _body_chunks(response, size=1 << 16):
    """The body's bytes as they arrive (urllib3's read1: whatever is there, so that a trickle is seen as one),
    decoded as Content-Encoding says; transfer errors raised as requests' exceptions, as iter_content does."""
    while True:
        try:
            chunk = response.raw.read1(size, decode_content=True)
        except ProtocolError as e:                  # fewer bytes than promised, a connection reset
            raise requests.exceptions.ChunkedEncodingError(e) from e
        except ReadTimeoutError as e:
            raise requests.exceptions.ConnectionError(e) from e
        except DecodeError as e:
            raise requests.exceptions.ContentDecodingError(e) from e
        if not chunk:
            return
        yield chunk


class Pace:
    """The deadline of one file (all its tries together) and the minimum rate of each try."""

    def __init__(self, url, deadline, min_rate):
        self.url, self.deadline, self.min_rate = url, deadline, min_rate
        self.started = self.try_started = time.monotonic()

    def new_try(self):
        """A try starts: the rate is measured from here, the deadline still from the first."""
        self.try_started = time.monotonic()
        self.check(0, None)

    def check(self, received, expected):
        """A one-line UserError when the deadline has passed or this try runs below the minimum rate."""
        now = time.monotonic()
        of = f" of {expected}" if expected else ""
        if now - self.started > self.deadline:
            raise UserError(f"{self.url}: not complete after {self.deadline:g} s ({received}{of} bytes received); "
                            "nothing was saved: the server is too slow, try again later or use a mirror with --base-url")
        elapsed = now - self.try_started
        if elapsed > RATE_GRACE and received < self.min_rate * elapsed:
            raise UserError(f"{self.url}: arriving at {received / elapsed:.0f} bytes/s, below the {self.min_rate} "
                            f"bytes/s a download needs ({received}{of} bytes in {elapsed:.0f} s); nothing was saved: "
                            "try again later or use a mirror with --base-url")


def _stream(response, out, target, url, expected, max_bytes, pace):
    """Copy the body into `out`, stopping past `max_bytes` or when it is too slow (`pace`); returns what was
    Received."""
    got = Received()
    chunks = _body_chunks(response)
    while True:
        try:
            chunk = next(chunks, None)
        except (requests.exceptions.RequestException, OSError) as e:
            raise _BrokenTransfer(_broken_off(e, expected)) from e
        if chunk is None:
            return got
        if got.received + len(chunk) > max_bytes:
            raise _too_large(url, f"the body goes on past {max_bytes} bytes", max_bytes)
        got.add(chunk)
        try:
            out.write(chunk)
        except OSError as e:
            raise write_failed(target, e, kept="nothing was saved") from e
        pace.check(got.received, expected)


def _create_temporary(target):
    """A new hidden file beside `target`, named with this process's PID; created as open() would (the umask
    applies: mkstemp's 0600 would be kept by the rename). Returns (fd, path)."""
    while True:
        path = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.part"
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path
        except FileExistsError:
            continue
        except OSError as e:
            raise write_failed(target, e, kept="nothing was saved") from e


def _save_once(session, url, target, timeout, retries, max_bytes, expected_sha256, pace):
    """One GET of `url` into a temporary file renamed to `target` when complete; cleans up on any failure
    (a UserError, Ctrl-C or SIGTERM). Returns the file's SHA-256."""
    pace.new_try()
    response = _get(session, url, timeout, retries)
    with response:
        status = f"HTTP {response.status_code} {response.reason}"
        if response.status_code >= 500:
            tries = f", {_tries(retries)}" if response.status_code in RETRIED_STATUS else ""
            raise UserError(f"{url}: {status}{tries}; the server is failing, try again later "
                            "or use a mirror with --base-url")
        if response.status_code != 200:
            kind = NotOnSite if response.status_code in (404, 410) else UserError
            raise kind(f"{url}: {status}; check --base-url (a mirror must hold 001.txt, 002.txt, ... "
                            "as the book's site does)")
        expected = response.headers.get("Content-Length")
        if expected is not None and expected.isdigit() and int(expected) > max_bytes:
            raise _too_large(url, f"the server announces {expected} bytes", max_bytes)
        tmp = None
        try:
            fd, tmp = _create_temporary(target)
            try:
                with os.fdopen(fd, "wb") as out:
                    got = _stream(response, out, target, url, expected, max_bytes, pace)
            except OSError as e:                    # the close's flush: a full disk
                raise write_failed(target, e, kept="nothing was saved") from e
            if expected is not None and "Content-Encoding" not in response.headers and got.received != int(expected):
                raise _BrokenTransfer(f"received {got.received} of the {expected} bytes announced")
            if "html" in response.headers.get("Content-Type", "").lower() or _looks_like_html(got.head):
                raise UserError(f"{url}: the server sent an HTML page, not a story; check --base-url "
                                "(it must point at the folder holding 001.txt, 002.txt, ...)")
            if got.blank:
                raise UserError(f"{url}: the server sent an empty file, not a story; check --base-url")
            digest = got.sha256.hexdigest()
            if digest != expected_sha256:          # a file named by its SHA-256 (the book's .npy) is taken as it is
                if got.binary:
                    raise UserError(f"{url}: the server sent binary data (a NUL byte), not a story; check --base-url")
                refusal = story_refusal(Path(tmp).read_bytes())
                if refusal:
                    raise UserError(f"{url}: the server sent a file `train` and `evaluate` would refuse "
                                    f"({refusal[0]}); nothing was saved: check --base-url (the site's stories "
                                    "are ASCII)")
            if expected_sha256 and digest != expected_sha256:
                raise UserError(differs_message(url, digest, expected_sha256, "nothing was saved: check --base-url, "
                                                f"or keep it with {OTHER_CORPUS_FLAG}"))
            try:
                os.replace(tmp, target)
            except OSError as e:
                raise write_failed(target, e, kept="nothing was saved") from e
            tmp = None
            return digest
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)


def fetch(session, url, target, timeout, retries=3, backoff=0.5, max_bytes=MAX_STORY_BYTES, expected_sha256=None,
          deadline=DEADLINE, min_rate=MIN_RATE):
    """Save `url` as `target`, whole or not at all; a body that breaks off is fetched again `retries` times.

    A body larger than `max_bytes`, slower than `deadline` (seconds, all tries together) or `min_rate`
    (bytes/s), or (given `expected_sha256`) another file than expected, is refused. So is
    binary data (a NUL byte) or a story `train` would refuse, unless it is the file `expected_sha256` names
    (e.g. the book's .npy). Returns the saved file's SHA-256.
    """
    target = Path(target)
    pace = Pace(url, deadline, min_rate)
    for attempt in range(retries + 1):
        try:
            return _save_once(session, url, target, timeout, retries, max_bytes, expected_sha256, pace)
        except _BrokenTransfer as e:
            if attempt == retries:
                raise UserError(f"{url}: {e}, {_tries(retries)}; nothing was saved, run download again "
                                "later or use a mirror with --base-url") from e
            time.sleep(backoff * 2 ** attempt)


def check_base_url(base_url):
    """`base_url` ending in `/`, or a usage error (exit 2) when it is not an http(s) URL with a host."""
    how = f"give --base-url (or {BASE_URL_ENV}) as http://host/folder/, the folder holding 001.txt, 002.txt, ..."
    try:
        parts = urlsplit(base_url)
        problem = ("not an http(s) URL" if parts.scheme not in ("http", "https")
                   else "no host name in it" if not parts.hostname
                   else "it holds a space" if any(c.isspace() for c in base_url)
                   else None)
        parts.port                                  # raises ValueError unless a number in 0 ... 65535
        if not problem and not parts.hostname.startswith("["):
            parts.hostname.encode("idna")           # raises UnicodeError for an empty or overlong label (a..b)
    except UnicodeError:
        problem = f"{parts.hostname!r} is not a valid host name"
    except ValueError as e:                         # also an unclosed [IPv6 address
        problem = f"not a valid URL ({e})"
    if problem:
        raise UserError(f"{base_url}: {problem}; {how}", exit_code=2)
    return base_url if base_url.endswith("/") else base_url + "/"


def _prepare_folder(stories_dir):
    if stories_dir.exists() and not stories_dir.is_dir():
        raise UserError(f"--stories-dir {stories_dir}: a file, not a folder; choose another --stories-dir",
                        exit_code=2)
    try:
        stories_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(stories_dir, unnamed_parts=True)
    except OSError as e:
        raise UserError(f"{stories_dir}: cannot use it as the stories folder ({disk_failure(e)[0]}); "
                        "choose another --stories-dir") from e


def _present_and_kept(path, book_sha256, allow_other_corpus, max_bytes, log):
    """Whether the story already at `path` stays: it is non-empty and the book's file (or has no manifest
    entry, or the user allows other files). A file that is not a regular file is refused in one line."""
    if not os.path.exists(path):                    # missing, or a broken symbolic link the file will replace
        return False
    raw = read_story_bytes(path, max_bytes)
    if not raw.strip():
        return False
    digest = hashlib.sha256(raw).hexdigest()
    if book_sha256 is None or digest == book_sha256:
        return True
    if allow_other_corpus:
        log("warning: " + differs_message(path, digest, book_sha256, f"kept ({OTHER_CORPUS_FLAG})"))
        return True
    log(f"{path} differs from the file the book read: fetching it again")
    return False


def download_stories(stories_dir="stories", num_files=100, base_url=None, timeout=(10, 30), retries=3,
                     backoff=0.5, log=print, numbers=None, max_bytes=MAX_STORY_BYTES, allow_other_corpus=False,
                     deadline=DEADLINE, min_rate=MIN_RATE, missing_ok=False):
    """Fetch `001.txt` ... `NNN.txt` (or the story `numbers`, e.g. 101 ... 209) into `stories_dir`. Returns the paths.

    Files present are kept when they are the site's (SHA-256, golden manifests) or have no manifest
    entry; one that differs is fetched again, and a fetched one that differs is refused, unless
    `allow_other_corpus`. `timeout` is requests' (connect, read) in seconds; `retries` and `backoff`
    (seconds, doubling), `deadline` (seconds) and `min_rate` (bytes/s) apply to every file. On a failure
    the files fetched so far stay and the error says so. With `missing_ok`, a story the server does not
    hold (HTTP 404 or 410) is left out, the absent ones named in one line, and the paths present returned.
    """
    if not numbers and not 1 <= num_files <= SITE_STORIES:
        raise UserError(f"--num-files {num_files}: the site holds stories 1 ... {SITE_STORIES}; give 1 ... "
                        f"{SITE_STORIES}", exit_code=2)
    base_url = check_base_url(default_base_url() if base_url is None else base_url)
    stories_dir = stories_folder(stories_dir)
    _prepare_folder(stories_dir)
    names = [story_name(n) for n in numbers] if numbers else story_filenames(num_files)
    book = site_story_hashes()
    wanted = [n for n in names
              if not _present_and_kept(stories_dir / n, book.get(n), allow_other_corpus, max_bytes, log)]
    what = f"{len(names)} stories" if not numbers else f"{len(names)} stories ({names[0]} ... {names[-1]})"
    if not wanted:
        log(f"All {what} already in {stories_dir}/")
        return [stories_dir / n for n in names]
    log(f"Downloading {len(wanted)} of {what} from {base_url} into {stories_dir}/")
    started = time.monotonic()
    absent = []
    with make_session(retries=retries, backoff=backoff) as session:
        for count, name in enumerate(wanted, 1):
            expected = None if allow_other_corpus else book.get(name)
            try:
                digest = fetch(session, base_url + name, stories_dir / name, timeout, retries=retries,
                               backoff=backoff, max_bytes=max_bytes, expected_sha256=expected, deadline=deadline,
                               min_rate=min_rate)
            except UserError as e:
                if missing_ok and isinstance(e, NotOnSite):
                    absent.append(name)
                    continue
                have = len(names) - len(wanted) + count - 1 - len(absent)
                raise UserError(f"{e} [{have} of {len(names)} stories are in {stories_dir}/; "
                                "a re-run fetches only the missing ones]", e.exit_code) from e
            if name in book and digest != book[name]:
                log("warning: " + differs_message(stories_dir / name, digest, book[name], f"kept ({OTHER_CORPUS_FLAG})"))
            if count % 10 == 0 or count == len(wanted):
                log(f"  {count}/{len(wanted)} files  ({rate_and_eta(started, count, len(wanted), 'files')})")
    if absent:
        log(f"{base_url} lacks {len(absent)} of the {len(names)} stories (HTTP 404): "
            f"{', '.join(n[:-len('.txt')] for n in absent)}")
    return [stories_dir / n for n in names if n not in absent]
