"""Download the book's stories with `requests`: retries, timeouts, and never a partial file on disk.

Each story is streamed into a hidden temporary file beside its target (`.001.txt.XXXX.part`) and
renamed only once it is complete and looks like a story, so an interrupted or failed download
leaves either the whole file or nothing. Files already present and non-empty are kept, so a re-run
fetches only what is missing.

Retries: urllib3 retries refused connections, timeouts and 5xx answers with exponential back-off;
a body that breaks off half-way (shorter than its Content-Length, or stalled) is fetched again by
`fetch` itself. Every failure is a one-line `UserError` naming the URL and what to do.
"""
import os
import tempfile
import time
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from reproduce.data import story_filenames
from reproduce.errors import UserError

BOOK_URL = "https://www.cs.cmu.edu/~spok/grimmtmp/"
BASE_URL_ENV = "GRIMM_BASE_URL"          # points the download at a mirror
MIRROR_HINT = "check the network, or use a mirror with --base-url"
RETRIED_STATUS = (500, 502, 503, 504)    # answers worth asking again


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


def _looks_like_html(head):
    """Stories start with their title; an HTML page (error page, login portal) starts with a tag."""
    start = head.lstrip().lower()
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
    except requests.exceptions.RequestException as e:
        raise UserError(f"{url}: {e.__class__.__name__}: {e}") from e


def _stream(response, out, target, expected):
    """Copy the body into `out`; returns its size, its first KiB, and whether it is blank or holds a NUL byte."""
    received, head, blank, binary = 0, b"", True, False
    chunks = response.iter_content(chunk_size=1 << 16)
    while True:
        try:
            chunk = next(chunks, None)
        except (requests.exceptions.RequestException, OSError) as e:
            raise _BrokenTransfer(_broken_off(e, expected)) from e
        if chunk is None:
            return received, head, blank, binary
        head = head if len(head) >= 1024 else head + chunk[:1024]
        blank = blank and not chunk.strip()
        binary = binary or b"\x00" in chunk
        try:
            out.write(chunk)
        except OSError as e:
            raise UserError(f"{target}: cannot write it ({e.strerror}); nothing was saved, "
                            "free some space or choose another --stories-dir") from e
        received += len(chunk)


def _save_once(session, url, target, timeout, retries):
    """One GET of `url` into a temporary file renamed to `target` when complete; cleans up on any failure."""
    response = _get(session, url, timeout, retries)
    with response:
        status = f"HTTP {response.status_code} {response.reason}"
        if response.status_code >= 500:
            tries = f", {_tries(retries)}" if response.status_code in RETRIED_STATUS else ""
            raise UserError(f"{url}: {status}{tries}; the server is failing, try again later "
                            "or use a mirror with --base-url")
        if response.status_code != 200:
            raise UserError(f"{url}: {status}; check --base-url (a mirror must hold 001.txt, 002.txt, ... "
                            "as the book's site does)")
        expected = response.headers.get("Content-Length")
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        except OSError as e:
            raise UserError(f"{target.parent}: cannot write there ({e.strerror}); choose another --stories-dir") from e
        try:
            with os.fdopen(fd, "wb") as out:
                received, head, blank, binary = _stream(response, out, target, expected)
            if expected is not None and "Content-Encoding" not in response.headers and received != int(expected):
                raise _BrokenTransfer(f"received {received} of the {expected} bytes announced")
            if "html" in response.headers.get("Content-Type", "").lower() or _looks_like_html(head):
                raise UserError(f"{url}: the server sent an HTML page, not a story; check --base-url "
                                "(it must point at the folder holding 001.txt, 002.txt, ...)")
            if blank:
                raise UserError(f"{url}: the server sent an empty file, not a story; check --base-url")
            if binary:
                raise UserError(f"{url}: the server sent binary data (a NUL byte), not a story; check --base-url")
            try:
                os.replace(tmp_name, target)
            except OSError as e:
                raise UserError(f"{target}: cannot save it ({e.strerror}); remove what is in the way and "
                                "run download again") from e
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)


def fetch(session, url, target, timeout, retries=3, backoff=0.5):
    """Save `url` as `target`, whole or not at all; a body that breaks off is fetched again `retries` times."""
    target = Path(target)
    for attempt in range(retries + 1):
        try:
            return _save_once(session, url, target, timeout, retries)
        except _BrokenTransfer as e:
            if attempt == retries:
                raise UserError(f"{url}: {e}, {_tries(retries)}; nothing was saved, run download again "
                                "later or use a mirror with --base-url") from e
            time.sleep(backoff * 2 ** attempt)


def _check_base_url(base_url):
    if not base_url.startswith(("http://", "https://")):
        raise UserError(f"{base_url}: not an http(s) URL; give --base-url (or {BASE_URL_ENV}) as "
                        "http://host/folder/, the folder holding 001.txt, 002.txt, ...", exit_code=2)
    return base_url if base_url.endswith("/") else base_url + "/"


def _prepare_folder(stories_dir):
    try:
        stories_dir.mkdir(parents=True, exist_ok=True)
        for stale in stories_dir.glob(".*.part"):       # left by a process killed mid-download
            stale.unlink()
    except OSError as e:
        raise UserError(f"{stories_dir}: cannot use it as the stories folder ({e.strerror}); "
                        "choose another --stories-dir") from e


def download_stories(stories_dir="stories", num_files=100, base_url=None, timeout=(10, 30), retries=3,
                     backoff=0.5, log=print):
    """Fetch `001.txt` ... into `stories_dir`; files present and non-empty are kept. Returns the paths.

    `timeout` is requests' (connect, read) in seconds; `retries` and `backoff` (seconds, doubling)
    apply to every file. On a failure the files fetched so far stay and the error says so.
    """
    base_url = _check_base_url(base_url or default_base_url())
    stories_dir = Path(stories_dir)
    _prepare_folder(stories_dir)
    names = story_filenames(num_files)
    wanted = [n for n in names if not ((stories_dir / n).is_file() and (stories_dir / n).stat().st_size > 0)]
    if not wanted:
        log(f"All {num_files} stories already in {stories_dir}/")
        return [stories_dir / n for n in names]
    log(f"Downloading {len(wanted)} of {num_files} stories from {base_url} into {stories_dir}/")
    started = time.monotonic()
    with make_session(retries=retries, backoff=backoff) as session:
        for count, name in enumerate(wanted, 1):
            try:
                fetch(session, base_url + name, stories_dir / name, timeout, retries=retries, backoff=backoff)
            except UserError as e:
                have = num_files - len(wanted) + count - 1
                raise UserError(f"{e} [{have} of {num_files} stories are in {stories_dir}/; "
                                "a re-run fetches only the missing ones]", e.exit_code) from e
            if count % 10 == 0 or count == len(wanted):
                rate = count / max(time.monotonic() - started, 1e-9)
                log(f"  {count}/{len(wanted)} files  ({rate:.1f} files/s, "
                    f"ETA {(len(wanted) - count) / rate:.0f} s)")
    return [stories_dir / n for n in names]
