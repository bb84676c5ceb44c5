"""Download the book's stories with `requests`: retries, timeouts, and never a partial file on disk."""
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


def default_base_url():
    return os.environ.get(BASE_URL_ENV) or BOOK_URL


def make_session(retries=3, backoff=0.5):
    """One session; urllib3 retries connection errors, read timeouts and 5xx with exponential back-off."""
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
                  status_forcelist=(500, 502, 503, 504), allowed_methods=frozenset({"GET"}),
                  raise_on_status=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _looks_like_html(head):
    start = head.lstrip()[:64].lower()
    return start.startswith(b"<!doctype html") or start.startswith(b"<html") or start.startswith(b"<head")


def fetch(session, url, target, timeout):
    """Stream `url` into a temporary file beside `target` and rename it only when complete and plausible."""
    try:
        response = session.get(url, stream=True, timeout=timeout)
    except requests.exceptions.RetryError as e:
        raise UserError(f"{url}: the server kept failing after retries ({e.__class__.__name__}); try again later "
                        "or use a mirror with --base-url") from e
    except requests.exceptions.ConnectionError as e:
        reason = "timed out" if isinstance(e, requests.exceptions.ReadTimeout) or "timed out" in str(e) else \
            "connection failed"
        raise UserError(f"{url}: {reason} after retries; check the network or use a mirror with --base-url") from e
    except requests.exceptions.Timeout as e:
        raise UserError(f"{url}: timed out after retries; check the network or use a mirror with --base-url") from e
    except requests.exceptions.RequestException as e:
        raise UserError(f"{url}: {e.__class__.__name__}: {e}") from e
    with response:
        if response.status_code != 200:
            raise UserError(f"{url}: HTTP {response.status_code} {response.reason}; "
                            "check --base-url (a mirror must hold 001.txt ... as the book's site does)")
        expected = response.headers.get("Content-Length")
        content_type = response.headers.get("Content-Type", "")
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        try:
            received = 0
            head = b""
            with os.fdopen(fd, "wb") as out:
                try:
                    for chunk in response.iter_content(chunk_size=1 << 16):
                        if len(head) < 64:
                            head += chunk[:64]
                        out.write(chunk)
                        received += len(chunk)
                except (requests.exceptions.RequestException, OSError) as e:
                    raise UserError(f"{url}: the transfer broke off after {received} bytes ({e.__class__.__name__}); "
                                    "nothing was saved, run download again") from e
            if expected is not None and "Content-Encoding" not in response.headers and received != int(expected):
                raise UserError(f"{url}: received {received} of {expected} bytes; nothing was saved, run download again")
            if received == 0:
                raise UserError(f"{url}: the server sent an empty file; nothing was saved")
            if "html" in content_type.lower() or _looks_like_html(head):
                raise UserError(f"{url}: the server sent an HTML page, not a story; check --base-url")
            os.replace(tmp_name, target)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)


def download_stories(stories_dir="stories", num_files=100, base_url=None, timeout=(10, 30), retries=3,
                     backoff=0.5, log=print):
    """Fetch `001.txt` ... into `stories_dir`; files present and non-empty are kept. Returns the paths."""
    base_url = base_url or default_base_url()
    if not base_url.endswith("/"):
        base_url += "/"
    stories_dir = Path(stories_dir)
    stories_dir.mkdir(parents=True, exist_ok=True)
    for stale in stories_dir.glob(".*.part"):       # left by a process killed mid-download
        stale.unlink()
    names = story_filenames(num_files)
    wanted = [n for n in names if not ((stories_dir / n).is_file() and (stories_dir / n).stat().st_size > 0)]
    if not wanted:
        log(f"All {num_files} stories already in {stories_dir}/")
        return [stories_dir / n for n in names]
    log(f"Downloading {len(wanted)} of {num_files} stories from {base_url} into {stories_dir}/")
    session = make_session(retries=retries, backoff=backoff)
    started = time.monotonic()
    with session:
        for count, name in enumerate(wanted, 1):
            fetch(session, base_url + name, stories_dir / name, timeout)
            if count % 10 == 0 or count == len(wanted):
                rate = count / max(time.monotonic() - started, 1e-9)
                log(f"  {count}/{len(wanted)} files  ({rate:.1f} files/s, "
                    f"ETA {(len(wanted) - count) / rate:.0f} s)")
    return [stories_dir / n for n in names]
