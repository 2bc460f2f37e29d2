"""`EtcdStore.write` sends transactions it encodes itself (backends/etcd.py `encode_txn`).

The bytes must be exactly what python-etcd3's messages serialise to, or etcd would apply
something else than the operator approved; the write path itself is covered against the real
20.09 CLI by test_conformance_etcd.py.
"""

from __future__ import annotations

import pytest
from etcd3 import etcdrpc

from backends.etcd import encode_txn, txn_succeeded


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


# -- the lock fence (issue 14): "only while the lock key is on this lease" -------------------------

@pytest.mark.parametrize("lease", [1, 0x694D8A3F2C1B0007, 2 ** 62 + 12345], ids=["small", "typical", "large"])
@pytest.mark.parametrize("ops", [CASES["image keys"], CASES["deletes"], CASES["empty"]], ids=["puts", "deletes", "none"])
def test_a_guarded_transaction_equals_protobuf(ops: list[tuple[str, str, str | None]], lease: int) -> None:
    key = "/bai-registry-migrate/lock/local"
    ref = etcdrpc.TxnRequest.FromString(_reference(ops))
    ref.compare.append(etcdrpc.Compare(result=etcdrpc.Compare.EQUAL, target=etcdrpc.Compare.LEASE,
                                       key=key.encode(), lease=lease))
    assert encode_txn(ops, lease_guard=(key, lease)) == ref.SerializeToString()


def test_a_put_on_a_lease_equals_protobuf() -> None:
    key, lease = "/bai-registry-migrate/lock/local", 0x694D8A3F2C1B0007
    ref = etcdrpc.TxnRequest(
        compare=[etcdrpc.Compare(result=etcdrpc.Compare.EQUAL, target=etcdrpc.Compare.LEASE, key=key.encode(),
                                 lease=lease)],
        success=[etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=key.encode(), value=b'{"pid": 1}',
                                                                  lease=lease))])
    assert encode_txn([("put", key, '{"pid": 1}')], lease_guard=(key, lease), put_lease=lease) == \
        ref.SerializeToString()


@pytest.mark.parametrize("succeeded", [True, False])
def test_txn_succeeded_reads_the_response(succeeded: bool) -> None:
    resp = etcdrpc.TxnResponse(
        header=etcdrpc.ResponseHeader(cluster_id=2 ** 63 + 5, member_id=7, revision=123456, raft_term=9),
        succeeded=succeeded,
        responses=[etcdrpc.ResponseOp(response_put=etcdrpc.PutResponse(header=etcdrpc.ResponseHeader(revision=3)))])
    assert txn_succeeded(resp.SerializeToString()) is succeeded
    assert txn_succeeded(b"") is False          # proto3 leaves a false `succeeded` out
