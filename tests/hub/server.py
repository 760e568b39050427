"""A local stand-in for the Hugging Face Hub: the part of its HTTP API that `huggingface_hub` and
`datasets` use, served on 127.0.0.1 from a folder of replica repos (see `replicas.py`).

Point `HF_ENDPOINT` at it and `datasets.load_dataset("ns/name", config, revision=...)`,
`load_dataset_builder`, `AutoConfig.from_pretrained` and `snapshot_download` run unchanged:

  GET  /api/{datasets|models}/{ns}/{name}[/revision/{rev}]   repo info (sha, siblings)
  GET  /api/{kind}/{ns}/{name}/tree/{rev}[/{path}]            folder listing (?recursive=true)
  POST /api/{kind}/{ns}/{name}/paths-info/{rev}               entries of the given paths
  GET|HEAD /[datasets/]{ns}/{name}/resolve/{rev}/{path}       a file (Range supported), X-Repo-Commit, ETag
  GET|HEAD /{anything else}                                   a static file under <root>/static (release archives)

Errors carry the Hub's `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound), so the
clients raise the same exception types as against the real Hub. Revisions are branch names, named
refs (`refs/convert/parquet`, URL-quoted by the clients) or commit shas; `<repo>/refs.json` maps
refs to commits and `<repo>/commits/<sha>/` holds each commit's files.

Run it as `python tests/hub/server.py ROOT --port-file F` (the tests do; it writes its port to F and
serves until killed), or use `serve(root)` in-process.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

KINDS = {"datasets": "datasets", "models": "models"}


def blob_oid(path: Path) -> str:
    """The git blob sha1 of a file: what the Hub reports as a file's oid and ETag."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, folder: Path, repo_id: str):
        self.folder, self.id = folder, repo_id
        self.refs = json.loads((folder / "refs.json").read_text())

    def commit(self, rev: str) -> str | None:
        if rev in self.refs:
            return self.refs[rev]
        return rev if (self.folder / "commits" / rev).is_dir() else None

    def files(self, sha: str) -> list[str]:
        base = self.folder / "commits" / sha
        return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())

    def entry(self, sha: str, path: str) -> dict | None:
        p = self.folder / "commits" / sha / path
        if p.is_file():
            return {"type": "file", "oid": blob_oid(p), "size": p.stat().st_size, "path": path}
        if p.is_dir():
            return {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0, "path": path}
        return None


class Handler(BaseHTTPRequestHandler):
    root: Path  # set by serve()
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # one line per request, to the server's log
        if os.environ.get("LOCAL_HUB_LOG"):
            sys.stderr.write("local-hub: " + fmt % args + "\n")

    # --- responses ------------------------------------------------------------------------------
    def _send(self, code: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
        """A response; Content-Length is the body's unless given (a HEAD of a file announces the file's size)."""
        self.send_response(code)
        for k, v in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, obj, code: int = 200, head: bool = False):
        self._send(code, json.dumps(obj).encode(), {"Content-Type": "application/json"}, head)

    def _error(self, code: int, error_code: str, message: str, head: bool = False):
        self._send(code, json.dumps({"error": message}).encode(),
                   {"Content-Type": "application/json", "X-Error-Code": error_code, "X-Error-Message": message}, head)

    # --- routing --------------------------------------------------------------------------------
    def _repo(self, kind: str, ns: str, name: str) -> Repo | None:
        folder = self.root / kind / ns / name
        return Repo(folder, f"{ns}/{name}") if (folder / "refs.json").is_file() else None

    def do_HEAD(self):
        self._route(head=True)

    def do_GET(self):
        self._route(head=False)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self._route(head=False, body=body)

    def _route(self, head: bool, body: str = ""):
        url = urlsplit(self.path)
        seg = [unquote(s) for s in url.path.strip("/").split("/")]
        query = parse_qs(url.query)
        if seg[:1] == ["api"] and len(seg) >= 4 and seg[1] in KINDS:
            return self._api(seg[1], seg[2], seg[3], seg[4:], query, body, head)
        if seg[:1] == ["datasets"] and len(seg) >= 6 and seg[3] == "resolve":
            return self._resolve("datasets", seg[1], seg[2], seg[4], "/".join(seg[5:]), head)
        if len(seg) >= 5 and seg[2] == "resolve":
            return self._resolve("models", seg[0], seg[1], seg[3], "/".join(seg[4:]), head)
        if len(seg) >= 4 and seg[1] == "resolve":  # an id without a namespace: the real Hub redirects legacy ones, we do not
            return self._error(404, "RepoNotFound", f"Repository {seg[0]} not found (no namespace)", head)
        return self._static("/".join(seg), head)

    def _api(self, kind, ns, name, rest, query, body, head):
        repo = self._repo(kind, ns, name)
        if repo is None:
            return self._error(404, "RepoNotFound", f"Repository {ns}/{name} not found", head)
        rev = rest[1] if len(rest) >= 2 else "main"
        sha = repo.commit(rev)
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
        if not rest or rest[0] == "revision":
            siblings = [{"rfilename": f} for f in repo.files(sha)]
            return self._json({"_id": sha[:24], "id": repo.id, "sha": sha, "private": False, "disabled": False, "gated": False,
                               "downloads": 0, "likes": 0, "tags": [], "siblings": siblings, "cardData": {},
                               "lastModified": "2024-01-01T00:00:00.000Z", "createdAt": "2021-01-01T00:00:00.000Z"}, head=head)
        if rest[0] == "tree":
            path = "/".join(rest[2:]).strip("/")
            base = repo.folder / "commits" / sha
            folder = base / path
            if not folder.is_dir():
                return self._error(404, "EntryNotFound", f"{path} does not exist on {rev}", head)
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            children = folder.rglob("*") if recursive else folder.iterdir()
            entries = [repo.entry(sha, str(p.relative_to(base))) for p in sorted(children)]
            return self._json(entries, head=head)
        if rest[0] == "paths-info":
            form = parse_qs(body)
            paths = form.get("paths", [])
            if not paths and body.strip().startswith("{"):
                paths = json.loads(body).get("paths", [])
            return self._json([e for p in paths if (e := repo.entry(sha, p.strip("/")))], head=head)
        return self._error(404, "EntryNotFound", f"unknown API route {'/'.join(rest)}", head)

    def _resolve(self, kind, ns, name, rev, path, head):
        repo = self._repo(kind, ns, name)
        if repo is None:
            return self._error(404 if kind == "datasets" else 401, "RepoNotFound", f"Repository {ns}/{name} not found", head)
        sha = repo.commit(rev)
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
        file = repo.folder / "commits" / sha / path
        if not file.is_file():
            return self._error(404, "EntryNotFound", f"{path} does not exist on {rev}", head)
        return self._file(file, {"X-Repo-Commit": sha, "ETag": f'"{blob_oid(file)}"'}, head)

    def _static(self, path, head):
        file = self.root / "static" / path
        if not path or not file.is_file():
            return self._send(404, b"Not Found", {"Content-Type": "text/plain"}, head)
        return self._file(file, {"ETag": f'"{blob_oid(file)}"'}, head)

    def _file(self, file: Path, headers: dict, head: bool):
        size = file.stat().st_size
        start, end, code = 0, size - 1, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start, end, code = int(a or 0), min(int(b) if b else size - 1, size - 1), 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        with open(file, "rb") as f:
            f.seek(start)
            data = f.read(end - start + 1) if size else b""
        self._send(code, data, {**headers, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream",
                                "Content-Length": str(len(data))}, head)


def serve(root: str | Path, port: int = 0) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start the server in a thread on 127.0.0.1 (port 0: a free one); stop it with server.shutdown()."""
    handler = type("BoundHandler", (Handler,), {"root": Path(root)})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True, help="the chosen port is written here once the server listens")
    args = ap.parse_args()
    server, thread = serve(args.root, args.port)
    tmp = Path(args.port_file + ".tmp")
    tmp.write_text(str(server.server_address[1]))
    tmp.replace(args.port_file)
    thread.join()


if __name__ == "__main__":
    main()
