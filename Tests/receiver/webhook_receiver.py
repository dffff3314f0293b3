"""A webhook endpoint for the end-to-end tests: records every request it is sent, checks its signature
with the Standard Webhooks reference library (`standardwebhooks` from PyPI), and answers as it is told.

    python webhook_receiver.py --state DIR [--port N]

It listens on 127.0.0.1 (port N, or a free one) and writes the port to DIR/port. What it received is
appended to DIR/received.jsonl and its configuration kept in DIR/config.json, so that a receiver
started again on the same port and folder goes on where the last one stopped.

    PUT /_admin/paths        {"path": "/a", "secret": "whsec_…", "statuses": [503, 503], "status": 200,
                              "delay": 0, "location": null}
        answers the next requests to /a with the statuses in turn, then with `status`, after `delay`
        seconds; a 307/308 carries `location`.
    GET /_admin/received?path=/a   the requests to /a: {path, headers, body, verified, error, answered}
"""

import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

lock = threading.Lock()


class State:
    def __init__(self, folder):
        self.folder = folder
        self.config_file = os.path.join(folder, "config.json")
        self.received_file = os.path.join(folder, "received.jsonl")
        self.paths = {}
        if os.path.exists(self.config_file):
            with open(self.config_file) as f:
                self.paths = json.load(f)

    def save(self):
        with open(self.config_file + ".new", "w") as f:
            json.dump(self.paths, f)
        os.replace(self.config_file + ".new", self.config_file)

    def answer(self, path):
        """The status, delay and location for the next request to `path`."""
        with lock:
            config = self.paths.get(path, {})
            statuses = config.get("statuses") or []
            status = statuses.pop(0) if statuses else config.get("status", 200)
            config["statuses"] = statuses
            if path in self.paths:
                self.save()
            return status, config.get("delay", 0), config.get("location"), config.get("secret")

    def record(self, entry):
        with lock:
            with open(self.received_file, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def received(self, path):
        if not os.path.exists(self.received_file):
            return []
        with lock, open(self.received_file) as f:
            entries = [json.loads(line) for line in f if line.strip()]
        return [e for e in entries if path is None or e["path"] == path]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, format, *args):
        pass

    def send_json(self, status, value):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_PUT(self):
        if self.path != "/_admin/paths":
            return self.send_json(404, {"error": "unknown"})
        config = json.loads(self.body())
        with lock:
            self.state.paths[config["path"]] = config
            self.state.save()
        self.send_json(200, config)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/_admin/received":
            path = parse_qs(url.query).get("path", [None])[0]
            return self.send_json(200, self.state.received(path))
        if url.path == "/_admin/health":
            return self.send_json(200, {"status": "ok"})
        self.send_json(404, {"error": "unknown"})

    def do_POST(self):
        body = self.body()
        path = urlparse(self.path).path
        status, delay, location, secret = self.state.answer(path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        verified, error = False, None
        if secret:
            try:
                Webhook(secret).verify(body, headers)
                verified = True
            except WebhookVerificationError as failure:
                error = str(failure)
        else:
            error = "no secret configured for this path"
        self.state.record({"path": path, "headers": headers, "body": body.decode("utf-8", "replace"), "verified": verified,
                           "error": error, "answered": status, "time": time.time()})
        if delay:
            time.sleep(delay)
        self.send_response(status)
        if location and status in (301, 302, 303, 307, 308):
            self.send_header("Location", location)
        answer = b'{"received": true}'
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", required=True)
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args()
    os.makedirs(options.state, exist_ok=True)
    Handler.state = State(options.state)
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", options.port), Handler)
    with open(os.path.join(options.state, "port.new"), "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(os.path.join(options.state, "port.new"), os.path.join(options.state, "port"))
    server.serve_forever()


if __name__ == "__main__":
    main()
