"""`EtcdStore.write` sends transactions it encodes itself (backends/etcd.py `encode_txn`).

The bytes must be exactly what python-etcd3's messages serialise to, or etcd would apply
something else than the operator approved; the write path itself is covered against the real
20.09 CLI by test_conformance_etcd.py.
"""

from __future__ import annotations

import pytest
from etcd3 import etcdrpc

from backends.etcd import encode_txn


def _reference(ops: list[tuple[str, str, str | None]]) -> bytes:
    success = []
    for kind, a, b in ops:
        if kind == "put":
            success.append(etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=a.encode(), value=(b or "").encode())))
        elif kind == "del":
            success.append(etcdrpc.RequestOp(request_delete_range=etcdrpc.DeleteRangeRequest(key=a.encode())))
        else:
            success.append(etcdrpc.RequestOp(request_delete_range=etcdrpc.DeleteRangeRequest(
                key=a.encode(), range_end=(b or "").encode())))
    return etcdrpc.TxnRequest(compare=[], success=success, failure=[]).SerializeToString()


CASES = {
    "empty": [],
    "image keys": [("put", "/sorna/local/images/cr.backend.ai/stable%2Fpython/3.9-ubuntu20.04",
                    "sha256:" + "ab" * 32),
                   ("put", "/sorna/local/images/cr.backend.ai/stable%2Fpython/3.9-ubuntu20.04/size_bytes", "1024")],
    "empty value and unicode": [("put", "/sorna/local/config/ü/é", ""), ("put", "/sorna/local/日本", "値")],
    "deletes": [("del", "/sorna/local/images/index.docker.io", None),
                ("delrange", "/sorna/local/images/index.docker.io/", "/sorna/local/images/index.docker.io0")],
    "long key and value (multi-byte varints)": [("put", "/sorna/local/" + "k" * 300, "v" * 70_000)],
    "128 operations": [("put", f"/sorna/local/images/r/x{i:03d}", str(i)) for i in range(128)],
}


@pytest.mark.parametrize("ops", CASES.values(), ids=list(CASES))
def test_encoding_equals_protobuf(ops: list[tuple[str, str, str | None]]) -> None:
    assert encode_txn(ops) == _reference(ops)


def test_unknown_operation_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown transaction operation"):
        encode_txn([("range", "/sorna/local/x", None)])
