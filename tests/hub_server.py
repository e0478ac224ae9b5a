#!/usr/bin/env python3
"""A tiny stand-in for the Hugging Face Hub, for tests/test_hub_download.cpp (standard library only).

Serves one repository (--repo, default org/gpt2-tiny) made of the regular files at the top of --root
(with --recursive: and in its subfolders, named "sub/file"),
answering as the real Hub does:

  GET  /api/models/<repo>/revision/main      {"id", "sha", "siblings": [{"rfilename"}]}
  GET  /api/models/<repo>/tree/<rev>          [{"type": "file", "path", "oid", "size"}], --tree-page-size
                                              entries a page, the next page in a `Link: <absolute
                                              URL?cursor=N>; rel="next"` header
  HEAD/GET /<repo>/resolve/<sha|main>/<file>  small files: a relative 307 to /api/resolve-cache/... with
                                              X-Repo-Commit only; *.safetensors (LFS): 302 to the "CDN"
                                              (a second server on another port of 127.0.0.1) with
                                              X-Linked-Etag = sha256, X-Linked-Size, X-Repo-Commit
  HEAD/GET /api/resolve-cache/models/<repo>/<sha>/<file>  small files: 200, ETag = git blob sha1
  HEAD/GET /cdn/<sha256>/<file>              (CDN port) the content; Range requests -> 206; a GET
                                              without Range -> 400, as the Xet bridge answers for
                                              large files

Errors carry X-Error-Code / X-Error-Message like the Hub: a missing repository is 401 RepoNotFound for
anonymous callers and 404 RepoNotFound with a valid token; an invalid token (one not given with
--require-token or --valid-token) gets 401 "Invalid credentials in Authorization header" on every Hub
route; a gated repository (--require-token) is 401 GatedRepo without a token and 403 GatedRepo with a
valid token that was not granted access; RevisionNotFound, EntryNotFound.
Both servers listen on 127.0.0.1 only. The hub port is printed alone on the first stdout line; nothing
else is ever written to stdout. --log FILE gets one JSON line per request:
  {"server": "hub"|"cdn", "method", "path", "range", "auth", "status"}

Test modes (the first ones apply to content GETs of *.safetensors files):
  --cut-after BYTES   the first --cut-count (default 1) GETs send headers with the full
                      Content-Length, then BYTES bytes of the body, then close the connection
  --stall-after BYTES the first GET sends BYTES bytes, then nothing for --stall-seconds (default 20)
  --corrupt           one byte of the content is flipped (the ETag stays the true sha256)
  --no-range          Range headers are ignored (always 200 with the whole file)
  --require-token T   the repository is gated: files are served only with "Authorization: Bearer T"
  --valid-token U     a token the Hub knows (repeatable) that was not granted access to a gated repo
  --no-safetensors    the file list shows pytorch_model.bin instead of the safetensors files
  --bare-401          a missing repository answers anonymous callers 401 without X-Error-Code
                      ("Invalid username or password."), the other answer the Hub has been seen giving
  --siblings MODE     "full" (default), "empty", "missing" (no key) or "truncated" (config.json only)
  --tree-page-size N  entries per tree listing page (default 1000)
  --relative-links    the tree listing's Link header names the next page by path only
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
        for folder, _, names in os.walk(args.root, followlinks=True):
            for name in sorted(names):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, args.root).replace(os.sep, "/")
                if os.path.isfile(path) and (args.recursive or "/" not in rel):
                    with open(path, "rb") as f:
                        self.files[rel] = f.read()
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
        parts = urllib.parse.urlsplit(self.path)
        self.state.log({"server": self.server_kind, "method": self.command,
                        "path": parts.path, "query": parts.query, "range": self.headers.get("Range"),
                        "auth": self.headers.get("Authorization"), "status": code})
        super().send_response(code, message)

    def handle_request(self, head):
        path = urllib.parse.urlsplit(self.path).path
        if self.server_kind == "cdn":
            self.serve_cdn(path, head)
        else:
            self.serve_hub(path, head)

    # ---- the Hub's rules for tokens ----
    def token(self):
        auth = self.headers.get("Authorization")
        return auth[len("Bearer "):] if auth and auth.startswith("Bearer ") else None

    def token_invalid(self):
        args = self.state.args
        token = self.token()
        return token is not None and token != args.require_token and token not in (args.valid_token or [])

    def repo_missing(self, repo, head):
        if self.token() is None:  # the Hub does not tell anonymous callers whether a repository exists
            if self.state.args.bare_401:
                body = json.dumps({"error": "Invalid username or password."}).encode()
                return self.send(401, body, {"Content-Type": "application/json",
                                             "X-Error-Message": "Invalid username or password.",
                                             "WWW-Authenticate": 'Bearer realm="Authentication required"'}, head)
            return self.error(401, "RepoNotFound", "Repository not found", head)
        return self.error(404, "RepoNotFound", "Repository not found", head)

    def gate_refuses(self, head):
        required = self.state.args.require_token
        if not required or self.token() == required:
            return False
        if self.token() is None:
            self.error(401, "GatedRepo", "Access to model %s is restricted. You must have access to it and be "
                       "authenticated to access it. Please log in." % self.state.repo, head)
        else:
            self.error(403, "GatedRepo", "Access to model %s is restricted and you are not in the authorized "
                       "list." % self.state.repo, head)
        return True

    def names(self):
        st = self.state
        names = [n for n in st.files if not (st.args.no_safetensors and n.endswith(".safetensors"))]
        if st.args.no_safetensors:
            names.append("pytorch_model.bin")
        return sorted(names)

    # ---- routes ----
    def serve_hub(self, path, head):
        st = self.state
        if self.token_invalid():
            body = json.dumps({"error": "Invalid credentials in Authorization header"}).encode()
            return self.send(401, body, {"Content-Type": "application/json",
                                         "X-Error-Message": "Invalid credentials in Authorization header"}, head)
        if path.startswith("/api/resolve-cache/models/"):
            return self.serve_resolve_cache(path[len("/api/resolve-cache/models/"):], head)
        if path.startswith("/api/models/"):
            return self.serve_api(path[len("/api/models/"):], head)
        marker = "/resolve/"
        if marker not in path:
            return self.error(404, "EntryNotFound", "not found", head)
        repo, rest = path[1:].split(marker, 1)
        if repo != st.repo:
            return self.repo_missing(repo, head)
        if "/" not in rest:
            return self.error(404, "EntryNotFound", "no file", head)
        rev, name = rest.split("/", 1)
        name = urllib.parse.unquote(name)
        if rev not in (st.commit, "main"):
            return self.error(404, "RevisionNotFound", "Invalid rev id: " + rev, head)
        if self.gate_refuses(head):
            return
        if name not in st.files:
            return self.error(404, "EntryNotFound", "Entry not found", head)
        data = st.files[name]
        etag = st.etags[name]
        if st.is_lfs(name):
            location = "http://127.0.0.1:%d/cdn/%s/%s" % (st.cdn_port, etag, urllib.parse.quote(name))
            return self.send(302, b"", {"Location": location, "X-Repo-Commit": st.commit,
                                        "X-Linked-Etag": '"%s"' % etag, "X-Linked-Size": str(len(data)),
                                        "ETag": 'W/"redirect-not-the-blob"'}, head)
        # Small files: a relative redirect on the same host; the ETag comes with the final answer.
        location = "/api/resolve-cache/models/%s/%s/%s?etag=%s" % (
            st.repo, st.commit, urllib.parse.quote(name), urllib.parse.quote('"%s"' % etag))
        return self.send(307, b"", {"Location": location, "X-Repo-Commit": st.commit}, head)

    def serve_resolve_cache(self, rest, head):
        st = self.state
        if not rest.startswith(st.repo + "/"):
            return self.repo_missing(rest, head)
        commit, _, name = rest[len(st.repo) + 1:].partition("/")
        name = urllib.parse.unquote(name)
        if commit != st.commit or name not in st.files or st.is_lfs(name):
            return self.error(404, "EntryNotFound", "Entry not found", head)
        if self.gate_refuses(head):
            return
        return self.send_content(st.files[name], {"ETag": '"%s"' % st.etags[name], "X-Repo-Commit": st.commit},
                                 head, lfs=False)

    def serve_api(self, rest, head):
        st = self.state
        if "/revision/" in rest:
            repo, rev = rest.split("/revision/", 1)
            route = "revision"
        elif "/tree/" in rest:
            repo, rev = rest.split("/tree/", 1)
            route = "tree"
        else:
            return self.error(404, "EntryNotFound", "unknown API route", head)
        if repo != st.repo:
            return self.repo_missing(repo, head)
        if rev not in (st.commit, "main"):
            return self.error(404, "RevisionNotFound", "Invalid rev id: " + rev, head)
        if route == "tree":
            return self.serve_tree(head)
        info = {"id": st.repo, "modelId": st.repo, "sha": st.commit}
        mode = st.args.siblings
        if mode != "missing":
            names = {"full": self.names(), "empty": [], "truncated": ["config.json"]}[mode]
            info["siblings"] = [{"rfilename": n} for n in names]
        return self.send(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, head)

    def serve_tree(self, head):
        st = self.state
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        start = int(query.get("cursor", ["0"])[0])
        size = st.args.tree_page_size
        names = self.names()
        entries = [{"type": "directory", "oid": "0" * 40, "size": 0, "path": "no-such-folder"}] if start == 0 else []
        for n in names[start:start + size]:
            data = st.files.get(n, b"")
            entries.append({"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": n})
        headers = {"Content-Type": "application/json"}
        if start + size < len(names):
            query["cursor"] = [str(start + size)]
            next_url = "%s?%s" % (urllib.parse.urlsplit(self.path).path, urllib.parse.urlencode(query, doseq=True))
            if not st.args.relative_links:
                next_url = "http://127.0.0.1:%d%s" % (self.server.server_port, next_url)
            headers["Link"] = '<%s>; rel="next"' % next_url
        return self.send(200, json.dumps(entries).encode(), headers, head)

    def serve_cdn(self, path, head):
        st = self.state
        parts = path.split("/", 3)  # "", "cdn", sha256, name
        if len(parts) != 4 or parts[1] != "cdn":
            return self.error(404, "EntryNotFound", "no such object", head)
        name = urllib.parse.unquote(parts[3])
        if name not in st.files or st.etags[name] != parts[2]:
            return self.error(404, "EntryNotFound", "no such object", head)
        if not head and self.headers.get("Range") is None:
            return self.error(400, "BadRequest", "a Range header is required", head)
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
    p.add_argument("--recursive", action="store_true", help="serve the files of --root's subfolders too")
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
    p.add_argument("--valid-token", action="append")
    p.add_argument("--bare-401", action="store_true")
    p.add_argument("--no-safetensors", action="store_true")
    p.add_argument("--siblings", choices=["full", "empty", "missing", "truncated"], default="full")
    p.add_argument("--tree-page-size", type=int, default=1000)
    p.add_argument("--relative-links", action="store_true")
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
