"""A minimal read-only Docker Registry (HTTP API v2) for berth's pull tests.

No registry is reachable from CI, so the tests serve one image themselves:
the output of `docker save` becomes a schema-2 manifest, its config blob and
one gzip layer per saved layer, under one repository and tag.

    python3 registry.py SAVED.tar REPO TAG PORT_FILE

Listens on 127.0.0.1 (Docker pulls from loopback registries over plain
HTTP), writes the chosen port to PORT_FILE, serves until killed.
"""

import gzip
import hashlib
import http.server
import io
import json
import os
import sys
import tarfile

saved, repo, tag, port_file = sys.argv[1:5]

blobs = {}


def add_blob(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return digest


def layer(raw):
    # A fast level: this is a test fixture.
    data = gzip.compress(raw, compresslevel=1)
    return {
        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "size": len(data),
        "digest": add_blob(data),
    }


with tarfile.open(saved) as t:
    index = json.load(t.extractfile("manifest.json"))[0]
    config = json.load(t.extractfile(index["Config"]))
    layers = [layer(t.extractfile(path).read()) for path in index["Layers"]]

# One layer of its own (a file naming the image), so the engine has
# something to download even though the base layers are already present.
extra = io.BytesIO()
with tarfile.open(fileobj=extra, mode="w") as t:
    body = f"{repo}:{tag} {os.getpid()}\n".encode()
    info = tarfile.TarInfo("berth-pull-test")
    info.size = len(body)
    t.addfile(info, io.BytesIO(body))
extra = extra.getvalue()
layers.append(layer(extra))
config["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(extra).hexdigest())
config.setdefault("history", []).append({"created_by": "berth pull test"})
config = json.dumps(config).encode()

manifest = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": len(config),
            "digest": add_blob(config),
        },
        "layers": layers,
    }
).encode()
manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, code, body=b"", ctype="application/json", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        p = self.path
        if p in ("/v2/", "/v2"):
            return self.send(200, b"{}")
        if p in (f"/v2/{repo}/manifests/{tag}", f"/v2/{repo}/manifests/{manifest_digest}"):
            return self.send(
                200,
                manifest,
                "application/vnd.docker.distribution.manifest.v2+json",
                [("Docker-Content-Digest", manifest_digest)],
            )
        prefix = f"/v2/{repo}/blobs/"
        if p.startswith(prefix) and p[len(prefix):] in blobs:
            digest = p[len(prefix):]
            return self.send(
                200,
                blobs[digest],
                "application/octet-stream",
                [("Docker-Content-Digest", digest)],
            )
        body = json.dumps(
            {"errors": [{"code": "MANIFEST_UNKNOWN", "message": f"no {p} here"}]}
        ).encode()
        return self.send(404, body)

    do_HEAD = do_GET


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
