#!/usr/bin/env python3
"""Adds the structured seeds to fuzz/corpus/<target>/ from the repository's
fixtures, docs and test inputs (each file named by its SHA-1, as libFuzzer
names its own). The committed corpora are these seeds grown by fuzzing and
minimised with `cargo fuzz cmin` (docs/reliability.md, "Fuzzing").
Run from the repository root: python3 fuzz/seeds.py"""
import hashlib, io, json, os, pathlib, struct, tarfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "corpus"


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


# Process-API frames: u32 big-endian length + DaemonRequest (request_id=1,
# type=2, and a length-delimited payload in a berth or seed field).
for ty in list(range(0, 48)) + [100, 101, 102]:
    body = field(1, 0, 7) + field(2, 0, ty)
    put("frame_envelope", struct.pack(">I", len(body)) + body)
    sub = field(1, 2, b"web") + field(2, 2, b"sleep 5")
    for f in (10 + ty % 30, 100 + ty % 10):
        b2 = body + field(f, 2, sub)
        put("frame_envelope", struct.pack(">I", len(b2)) + b2 + struct.pack(">I", len(body)) + body)
put("frame_envelope", struct.pack(">I", 4 << 20 | 1))

# Remote protocol v3: every frame and error of the published fixtures.
fx = json.loads((ROOT / "fixtures/binary-protocol-v3.fixtures.json").read_text())
for f in fx["frames"] + fx["errors"]:
    put("remote_frame", bytes.fromhex(f["hex"]))

# Compose: every corpus case's files, and the examples.
corpus = ROOT / "crates/berth-compose/tests/corpus"
for p in sorted(corpus.rglob("*")):
    if p.is_file() and p.suffix in (".yaml", ".yml") and "expected" not in p.parts:
        put("compose_resolve", p.read_bytes())
    if p.is_file() and (p.suffix == ".env" or p.name == ".env"):
        put("dotenv", p.read_bytes())
for p in sorted((ROOT / "examples").rglob("*.y*ml")):
    put("compose_resolve", p.read_bytes())
for s in ["${A}", "$A-$B", "${A:-default}", "${UNSET-d}", "${A:?need A}", "${UNSET?e}",
          "${A:+alt}", "${A+alt}", "$$A", "${A:-${B:-${C:-x}}}", "${", "$", "${A:-", "${NEST}",
          "port ${PORT:-80}:80", "${EMPTY:-e}${EMPTY-f}", "\\${A}", "${A:?}"]:
    put("compose_interpolate", s)
for s in ["A=1\nB=${A}\n", "export A='x y'\n", 'Q="a\\nb ${A}"\n', "# c\n\nK=v # trailing\n",
          "BAD KEY=1\n", "U='unterminated\n", 'D="unterminated\n', "NOVALUE\nHOME\n", "A=${B:-${C}}\n"]:
    put("dotenv", s)

# Ecosystem files (README's and the tests').
for s in ['[services.web]\ncmd = ["sleep", "5"]\nenv = { A = "1" }\nmax_restarts = 3\n',
          '[services.api]\ncmd = "python3 -m http.server 8000"\ncwd = "."\nautorestart = false\n'
          'restart_delay_ms = 200\nkill_timeout_ms = 5000\nmin_uptime_ms = 1000\n',
          "[services.web]\ncmd = []\n", '[services.all]\ncmd = "x"\n',
          '[services.web]\ncmd = "sleep 1"\ncmdd = 1\n', 'services = { a = { cmd = ["x"] } }\n']:
    put("ecosystem", s)

# Guest API bodies (docs/guest-api.md) and fs queries.
for s in ['{"command":"ls","args":["-la"],"cwd":"/tmp","env":{"A":"1"},"timeout_ms":1000,"stdin":"x"}',
          '{"command":"echo $HOME","shell":true}', '{"text":"hello","mime_type":"text/plain"}',
          '{"bundle_id":"org.berth.TestApp"}', '{"path":"/tmp/a.txt"}', "path=%2Fhome%2Fu",
          "path=/home/u/../../etc", '{"args":["x"]}', "{not json"]:
    put("guest_bodies", s)

# Node API terminal messages (docs/node-api.md) and /logs queries.
for s in ['{"type":"input","sessionId":"s1","data":"ls\\r"}', '{"type":"resize","rows":50,"cols":200}',
          '{"type":"ping"}', '{"type":"create_session","name":"t","workDir":"/tmp","rows":24,"cols":80}',
          '{"type":"close_session","sessionId":"s1"}', '{"type":"rename_session","sessionId":"s","name":"n"}',
          '{"type":"list_sessions"}', '{"type":"reattach_session","sessionId":"s","offset":1024}',
          "source=docker&level=warn&container=web&limit=50&cursor=100",
          "since=2024-01-01T00:00:00Z&until=2024-01-02T00:00:00Z&search=err", "\xe2\x82"]:
    put("node_messages", s)

# Packages: a valid plain-tar package, and ones with escapes and links.
def tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data, kind in entries:
            ti = tarfile.TarInfo(name)
            if kind == "link":
                ti.type, ti.linkname = tarfile.SYMTYPE, data
                t.addfile(ti)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o644
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()

manifest = b'{"app_id":"dev.test.notes","name":"Notes","version":"1.2.0","secrets":["TOKEN"]}'
files = [("manifest.json", manifest), ("capabilities.json", b'["host-port:8080"]'),
         ("compose.yaml", b'services:\n  web:\n    command: ["sleep", "9"]\n'),
         ("www/index.html", b"<h1>hi</h1>")]
sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in files)
sums += f"{hashlib.sha256(b'symlink:index.html').hexdigest()}  www/home.html\n"
good = [(n, d, "file") for n, d in files] + [("www/home.html", "index.html", "link"),
                                              ("SHA256SUMS", sums.encode(), "file")]
put("package_archive", tar(good))
put("package_archive", tar(good + [("../escape", b"x", "file")]))
put("package_archive", tar(good + [("out", "../../etc", "link")]))
put("package_archive", tar([("manifest.json", manifest, "file"), ("d", b"", "dir")]))
for m in [manifest, b'{"app_id":"a","name":"A","version":"1","compose":"sub/compose.yaml"}',
          b'{"app_id":"a","name":"A","version":"1","compose_files":["a.yaml","../b.yaml"]}',
          b'{"app_id":"a b","name":"","version":"1"}',
          b'{"app_id":"a","name":"A","version":"1","secrets":[{"name":"K","required":false}]}']:
    put("package_manifest", m)
print("seeds written to", OUT)
