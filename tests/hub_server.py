#!/usr/bin/env python3
"""A tiny stand-in for the Hugging Face Hub, for tests/test_hub_download.cpp (standard library only).

Serves one repository (--repo, default org/gpt2-tiny) made of the regular files at the top of --root:

  GET  /api/models/<repo>/revision/main      {"id", "sha", "siblings": [{"rfilename"}]}
  HEAD/GET /<repo>/resolve/<sha|main>/<file>  small files: 200, ETag = git blob sha1, X-Repo-Commit
                                              *.safetensors (LFS): 302 to the "CDN" (a second server
                                              on another port of 127.0.0.1) with X-Linked-Etag =
                                              sha256, X-Linked-Size, X-Repo-Commit
  HEAD/GET /cdn/<sha256>/<file>              (CDN port) the content; Range requests -> 206

Errors carry X-Error-Code like the Hub (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo).
Both servers listen on 127.0.0.1 only. The hub port is printed alone on the first stdout line; nothing
else is ever written to stdout. --log FILE gets one JSON line per request:
  {"server": "hub"|"cdn", "method", "path", "range", "auth", "status"}

Test modes (the first ones apply to content GETs of *.safetensors files):
  --cut-after BYTES   the first --cut-count (default 1) GETs send headers with the full
                      Content-Length, then BYTES bytes of the body, then close the connection
  --stall-after BYTES the first GET sends BYTES bytes, then nothing for --stall-seconds (default 20)
  --corrupt           one byte of the content is flipped (the ETag stays the true sha256)
  --no-range          Range headers are ignored (always 200 with the whole file)
  --require-token T   /resolve/ answers 401 (X-Error-Code: GatedRepo) without "Authorization: Bearer T"
  --no-safetensors    the file list shows pytorch_model.bin instead of the safetensors files
"""
import argparse
import hashlib
import json
import os
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class State:
    def __init__(self, args):
        self.args = args
        self.repo = args.repo
        self.files = {}  # name -> bytes
        for name in sorted(os.listdir(args.root)):
            path = os.path.join(args.root, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    self.files[name] = f.read()
        self.etags = {}
        for name, data in self.files.items():
            self.etags[name] = hashlib.sha256(data).hexdigest() if self.is_lfs(name) else git_blob_sha1(data)
        self.commit = hashlib.sha1(
            "".join(n + ":" + e + "\n" for n, e in sorted(self.etags.items())).encode()).hexdigest()
        self.lock = threading.Lock()
        self.content_gets = 0
        self.log_file = open(args.log, "a", buffering=1) if args.log else None
        self.cdn_port = 0

    @staticmethod
    def is_lfs(name):
        return name.endswith(".safetensors")

    def log(self, entry):
        if self.log_file:
            with self.lock:
                self.log_file.write(json.dumps(entry) + "\n")
                self.log_file.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK waits
    server_kind = "hub"
    state = None

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_HEAD(self):
        self.handle_request(head=True)

    def do_GET(self):
        self.handle_request(head=False)

    # ---- helpers ----
    def send(self, status, body=b"", headers=None, head=False):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def error(self, status, code, message, head):
        body = json.dumps({"error": message}).encode()
        self.send(status, body, {"Content-Type": "application/json", "X-Error-Code": code,
                                 "X-Error-Message": message}, head)

    def send_response(self, code, message=None):
        # Logged as the status line goes out, so a cut or stalled response is in the log at once.
        self.state.log({"server": self.server_kind, "method": self.command,
                        "path": urllib.parse.urlsplit(self.path).path, "range": self.headers.get("Range"),
                        "auth": self.headers.get("Authorization"), "status": code})
        super().send_response(code, message)

    def handle_request(self, head):
        path = urllib.parse.urlsplit(self.path).path
        if self.server_kind == "cdn":
            self.serve_cdn(path, head)
        else:
            self.serve_hub(path, head)

    def serve_hub(self, path, head):
        st = self.state
        prefix = "/api/models/"
        if path.startswith(prefix):
            rest = path[len(prefix):]
            if not rest.endswith("/revision/main"):
                return self.error(404, "EntryNotFound", "unknown API route", head)
            repo = rest[: -len("/revision/main")]
            if repo != st.repo:
                return self.error(404, "RepoNotFound", "Repository not found", head)
            names = [n for n in st.files if not (st.args.no_safetensors and n.endswith(".safetensors"))]
            if st.args.no_safetensors:
                names.append("pytorch_model.bin")
            info = {"id": st.repo, "modelId": st.repo, "sha": st.commit,
                    "siblings": [{"rfilename": n} for n in sorted(names)]}
            return self.send(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, head)
        marker = "/resolve/"
        if marker not in path:
            return self.error(404, "EntryNotFound", "not found", head)
        repo, rest = path[1:].split(marker, 1)
        if repo != st.repo:
            return self.error(404, "RepoNotFound", "Repository not found", head)
        if "/" not in rest:
            return self.error(404, "EntryNotFound", "no file", head)
        rev, name = rest.split("/", 1)
        name = urllib.parse.unquote(name)
        if rev not in (st.commit, "main"):
            return self.error(404, "RevisionNotFound", "Invalid rev id: " + rev, head)
        token = st.args.require_token
        if token and self.headers.get("Authorization") != "Bearer " + token:
            return self.error(401, "GatedRepo",
                              "Access to model %s is restricted. You must be authenticated to access it." % repo,
                              head)
        if name not in st.files:
            return self.error(404, "EntryNotFound", "Entry not found", head)
        data = st.files[name]
        etag = st.etags[name]
        if st.is_lfs(name):
            location = "http://127.0.0.1:%d/cdn/%s/%s" % (st.cdn_port, etag, urllib.parse.quote(name))
            return self.send(302, b"", {"Location": location, "X-Repo-Commit": st.commit,
                                        "X-Linked-Etag": '"%s"' % etag, "X-Linked-Size": str(len(data)),
                                        "ETag": 'W/"redirect-not-the-blob"'}, head)
        return self.send_content(data, {"ETag": '"%s"' % etag, "X-Repo-Commit": st.commit}, head, lfs=False)

    def serve_cdn(self, path, head):
        st = self.state
        parts = path.split("/", 3)  # "", "cdn", sha256, name
        if len(parts) != 4 or parts[1] != "cdn":
            return self.error(404, "EntryNotFound", "no such object", head)
        name = urllib.parse.unquote(parts[3])
        if name not in st.files or st.etags[name] != parts[2]:
            return self.error(404, "EntryNotFound", "no such object", head)
        self.send_content(st.files[name], {"ETag": '"%s"' % parts[2]}, head, lfs=True)

    def send_content(self, data, headers, head, lfs):
        st, args = self.state, self.state.args
        if lfs and args.corrupt:
            flipped = bytearray(data)
            flipped[len(flipped) // 2] ^= 0xFF
            data = bytes(flipped)
        status, start = 200, 0
        rng = self.headers.get("Range")
        headers = dict(headers)
        headers["Accept-Ranges"] = "bytes"
        if rng and not args.no_range:
            try:
                spec = rng.split("=", 1)[1]
                a, b = spec.split("-", 1)
                start = int(a)
                end = int(b) + 1 if b else len(data)
            except (IndexError, ValueError):
                return self.error(400, "BadRequest", "bad Range", head)
            if start >= len(data):
                headers["Content-Range"] = "bytes */%d" % len(data)
                return self.send(416, b"", headers, head)
            end = min(end, len(data))
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, end - 1, len(data))
            data = data[start:end]
            status = 206
        cut = stall = None
        if lfs and not head:
            with st.lock:
                st.content_gets += 1
                n = st.content_gets
            if args.cut_after is not None and n <= args.cut_count:
                cut = args.cut_after
            if args.stall_after is not None and n == 1:
                stall = args.stall_after
        if cut is None and stall is None:
            return self.send(status, data, headers, head)
        # Headers promise the whole body; only part of it comes.
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data[: cut if cut is not None else stall])
            self.wfile.flush()
            if stall is not None:
                time.sleep(args.stall_seconds)
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Server(ThreadingHTTPServer):
    def server_bind(self):
        # HTTPServer.server_bind looks the host name up (socket.getfqdn), which can take seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def make_server(state, kind):
    handler = type("%sHandler" % kind.capitalize(), (Handler,), {"server_kind": kind, "state": state})
    server = Server(("127.0.0.1", 0 if kind == "cdn" else state.args.port), handler)
    server.daemon_threads = True
    return server


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--repo", default="org/gpt2-tiny")
    p.add_argument("--log")
    p.add_argument("--cut-after", type=int)
    p.add_argument("--cut-count", type=int, default=1)
    p.add_argument("--stall-after", type=int)
    p.add_argument("--stall-seconds", type=float, default=20.0)
    p.add_argument("--corrupt", action="store_true")
    p.add_argument("--no-range", action="store_true")
    p.add_argument("--require-token")
    p.add_argument("--no-safetensors", action="store_true")
    args = p.parse_args()

    state = State(args)
    hub = make_server(state, "hub")
    cdn = make_server(state, "cdn")
    state.cdn_port = cdn.server_address[1]
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    sys.stdout.write("%d\n" % hub.server_address[1])
    sys.stdout.flush()
    try:
        hub.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
