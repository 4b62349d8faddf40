"""A third-party client of berth's project API: PyPI's grpcio, with no
.proto file and no generated code. Everything it knows about
berth.supervisor.v1.Supervisor it learns from the daemon's gRPC server
reflection.

Usage: project_grpc.py SOCKET [validate|all|defaults]
  validate: reflection, ValidateCompose
  all:      also ListProjects and GetProjectStatus of an unknown id
  defaults: as all, on a channel with grpcio's default options (no
            grpc.default_authority), as a host-app developer writes it
Exit status 0 when every check passed; 3 when grpcio or
grpcio-reflection is not importable (the Rust runner skips then).
"""

import sys

try:
    import grpc
    from google.protobuf.descriptor_pool import DescriptorPool
    from google.protobuf.message_factory import GetMessageClass
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )
except ImportError as e:
    print(f"missing python module: {e}")
    sys.exit(3)

SERVICE = "berth.supervisor.v1.Supervisor"

VALID = b"""services:
  web:
    image: nginx
    ports: ["8080:80"]
  db:
    image: postgres
"""

INVALID = b"""services:
  web:
    image: nginx
    privileged: true
"""


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}")


def main():
    sock, mode = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "all")
    # grpcio (since 1.57) sends the %-encoded socket path as :authority;
    # berth accepts any authority on its Unix and vsock listeners
    # (vendor/h2/BERTH-PATCH.md), so both the default channel and the
    # "localhost" convention work.
    if mode == "defaults":
        channel = grpc.insecure_channel(f"unix://{sock}")
    else:
        channel = grpc.insecure_channel(
            f"unix://{sock}", options=[("grpc.default_authority", "localhost")]
        )
    db = ProtoReflectionDescriptorDatabase(channel)
    check(SERVICE in db.get_services(), f"reflection lists {SERVICE}")
    pool = DescriptorPool(db)
    service = pool.FindServiceByName(SERVICE)

    def call(method, **fields):
        m = service.FindMethodByName(method)
        req, resp = GetMessageClass(m.input_type), GetMessageClass(m.output_type)
        stub = channel.unary_unary(
            f"/{SERVICE}/{m.name}",
            request_serializer=req.SerializeToString,
            response_deserializer=resp.FromString,
        )
        return stub(req(**fields), timeout=10)

    ok = call("ValidateCompose", compose_content=VALID, runtime="docker")
    check(ok.valid, "a valid file is valid")
    check(list(ok.services) == ["web", "db"], "services in file order")
    check(
        any(n.path == "web.ports[0]" for n in ok.transformed_fields),
        "ports are reported as transformed",
    )
    bad = call("ValidateCompose", compose_content=INVALID, runtime="docker")
    check(not bad.valid, "a privileged service makes the file invalid")
    check(
        [(n.service, n.path) for n in bad.rejected_fields] == [("web", "web.privileged")],
        "the rejection names service and path",
    )
    if mode == "validate":
        return

    listed = call("ListProjects")
    check(len(listed.projects) == 0, "no projects are registered")
    try:
        call("GetProjectStatus", project_id="nosuch")
        raise AssertionError("GetProjectStatus of an unknown id succeeded")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.NOT_FOUND, f"unknown id is NOT_FOUND ({e.code()})")
        trailers = dict(e.trailing_metadata() or ())
        check(
            trailers.get("berth-error-code") == "NOT_FOUND",
            f"berth-error-code trailer is NOT_FOUND ({trailers})",
        )


if __name__ == "__main__":
    main()
