"""A small HTTP server for tests: serves a folder on 127.0.0.1 and misbehaves on purpose, per path.

    with StoryServer("/work/shared/corpora/grimm") as server:
        server.script("003.txt", 500, 500, OK)        # two failures, then the file
        download_stories(d, 3, base_url=server.url)
        assert server.requests["003.txt"] == 3

A script is a sequence of actions, one per request to that path; the last action repeats for ever,
so `script("004.txt", 404)` always answers 404. Actions:

    OK              the file, with its Content-Length (404 if it does not exist)
    an int          that status code with a short text body (`OK` is 200)
    Slow(seconds)   wait before answering at all (a server slower than the client's timeout)
    STALL           send the headers and half the body, then wait (a transfer that hangs)
    SHORT           promise the whole file in Content-Length, send half of it and close
    HTML            status 200 with an HTML error page, as captive portals and bad mirrors do
    ENDLESS         status 200, no Content-Length, story-like text for ever (until the client hangs up)
    Huge(n)         status 200 announcing n bytes in Content-Length, then sending them
    Trickle(s)      the file with its Content-Length, one byte every s seconds (each read is quick)

Waits end early when the server stops, so a test never waits for a client that gave up.
`refused_url()` gives a URL on 127.0.0.1 where nothing listens (a port bound, then closed).
"""
import collections
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

OK = 200
STALL = "stall"
SHORT = "short"
HTML = "html"
ENDLESS = "endless"
HTML_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Service unavailable</title></head>\n"
             b"<body><h1>Please log in to the network</h1></body></html>\n")


class Slow:
    def __init__(self, seconds):
        self.seconds = seconds


class Huge:
    def __init__(self, size):
        self.size = size


class Trickle:
    def __init__(self, seconds):
        self.seconds = seconds


TEXT_LINE = b"once upon a time there was a king who had three daughters, and the youngest was fair.\n"


class StoryServer:
    def __init__(self, root):
        self.root = Path(root)
        self.requests = collections.Counter()      # "003.txt" -> requests received for it
        self._scripts = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = None
        self._thread = None

    def script(self, name, *actions):
        with self._lock:
            self._scripts[name.lstrip("/")] = list(actions)

    @property
    def url(self):
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self):
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()                       # wakes every Slow or STALL wait
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _next_action(self, name):
        with self._lock:
            self.requests[name] += 1
            script = self._scripts.get(name)
            if not script:
                return OK
            return script.pop(0) if len(script) > 1 else script[0]

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):          # keep the test output clean
                pass

            def do_GET(self):
                name = self.path.split("?")[0].lstrip("/")
                action = server._next_action(name)
                try:
                    self._answer(name, action)
                except (BrokenPipeError, ConnectionResetError):
                    pass                           # the client gave up first: expected in these tests

            def _answer(self, name, action):
                if isinstance(action, Slow):
                    if server._stopping.wait(action.seconds):
                        return
                    action = OK
                if action == HTML:
                    return self._send(200, HTML_PAGE, "text/html; charset=utf-8")
                if action == ENDLESS or isinstance(action, Huge):
                    return self._text_body(None if action == ENDLESS else action.size)
                if isinstance(action, int) and action != OK:
                    return self._send(action, f"{action} {self.responses.get(action, ('',))[0]}\n".encode())
                path = server.root / name
                if "/" in name or not path.is_file():
                    return self._send(404, b"404 Not Found\n")
                body = path.read_bytes()
                if action == OK:
                    return self._send(200, body)
                if isinstance(action, Trickle):
                    return self._trickle(body, action.seconds)
                self._send(200, body[:len(body) // 2], length=len(body))     # SHORT or STALL
                if action == STALL:
                    self.wfile.flush()
                    server._stopping.wait(30)
                self.close_connection = True

            def _text_body(self, size):
                """`size` bytes of story-like text with their Content-Length, or (None) text for ever."""
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                if size is not None:
                    self.send_header("Content-Length", str(size))
                self.end_headers()
                block = TEXT_LINE * 1024
                sent = 0
                while (size is None or sent < size) and not server._stopping.is_set():
                    part = block if size is None else block[:size - sent]
                    self.wfile.write(part)
                    sent += len(part)
                self.close_connection = True

            def _trickle(self, body, seconds):
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for k in range(len(body)):
                    self.wfile.write(body[k:k + 1])
                    self.wfile.flush()
                    if server._stopping.wait(seconds):
                        break
                self.close_connection = True

            def _send(self, status, body, content_type="text/plain", length=None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def refused_url():
    """An http URL on 127.0.0.1 whose port was free a moment ago and is closed now: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
