"""Decoding request bodies: Content-Encoding, limits, and decompression bombs."""

from __future__ import annotations

import gzip
import os
import tracemalloc
import zlib

import pytest

from sextant.edge.body import BodyError, BodyTooLarge, UnsupportedEncoding, decode_content

MIB = 1024 * 1024
PAYLOAD = b'{"application":{"id":"a"},"event":{"name":"x"},"type":"server","usr":{"id":"u"}}' * 50


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def test_error_statuses() -> None:
    assert BodyError.status == 400
    assert BodyTooLarge.status == 413
    assert UnsupportedEncoding.status == 415
    assert issubclass(BodyTooLarge, BodyError)
    assert issubclass(UnsupportedEncoding, BodyError)


@pytest.mark.parametrize("encoding", ["", "identity", "IDENTITY", " identity "])
def test_identity_within_the_limit_is_returned_as_is(encoding: str) -> None:
    assert decode_content(PAYLOAD, encoding, len(PAYLOAD)) == PAYLOAD
    assert decode_content(b"", encoding, 10) == b""


@pytest.mark.parametrize("encoding", ["", "identity"])
def test_identity_over_the_limit_is_too_large(encoding: str) -> None:
    with pytest.raises(BodyTooLarge) as caught:
        decode_content(PAYLOAD, encoding, len(PAYLOAD) - 1)
    assert caught.value.status == 413
    assert str(len(PAYLOAD) - 1) in str(caught.value)


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "GZIP", " gzip "])
def test_gzip(encoding: str) -> None:
    assert decode_content(gzip.compress(PAYLOAD), encoding, MIB) == PAYLOAD


def test_gzip_of_an_empty_body() -> None:
    assert decode_content(gzip.compress(b""), "gzip", 10) == b""


def test_multi_member_gzip_is_concatenated() -> None:
    members = [b'{"part":1,', b'"part2":"two",', b'"end":true}']
    body = b"".join(gzip.compress(m) for m in members)
    assert decode_content(body, "gzip", MIB) == b"".join(members)


def test_gzip_exactly_at_the_limit_is_accepted_and_one_byte_more_is_not() -> None:
    data = os.urandom(1000) + b"x" * 50_000
    assert decode_content(gzip.compress(data), "gzip", len(data)) == data
    with pytest.raises(BodyTooLarge):
        decode_content(gzip.compress(data), "gzip", len(data) - 1)


def test_multi_member_gzip_counts_every_member_against_the_limit() -> None:
    member = gzip.compress(b"a" * (3 * MIB))
    assert len(decode_content(member, "gzip", 5 * MIB)) == 3 * MIB
    with pytest.raises(BodyTooLarge) as caught:
        decode_content(member + member, "gzip", 5 * MIB)
    assert caught.value.status == 413


def test_deflate_zlib_wrapped() -> None:
    assert decode_content(zlib.compress(PAYLOAD), "deflate", MIB) == PAYLOAD


def test_deflate_raw() -> None:
    assert decode_content(raw_deflate(PAYLOAD), "deflate", MIB) == PAYLOAD


@pytest.mark.parametrize("compress", [zlib.compress, raw_deflate], ids=["zlib", "raw"])
def test_deflate_over_the_limit_is_too_large(compress: object) -> None:
    assert callable(compress)
    with pytest.raises(BodyTooLarge):
        decode_content(compress(b"z" * (2 * MIB)), "deflate", MIB)


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", b"this is not gzip at all"),
        ("gzip", b"\x1f\x8b\x08\x00" + b"\xff" * 40),  # a gzip header, then garbage
        ("deflate", b"\xff\xfe\xfd not deflate"),
        ("gzip", gzip.compress(PAYLOAD) + b"trailing garbage"),
    ],
)
def test_corrupt_data_is_a_400(encoding: str, body: bytes) -> None:
    with pytest.raises(BodyError) as caught:
        decode_content(body, encoding, MIB)
    assert type(caught.value) is BodyError
    assert caught.value.status == 400


def test_gzip_with_a_bad_checksum_is_a_400() -> None:
    good = bytearray(gzip.compress(PAYLOAD))
    good[-8] ^= 0xFF  # CRC32 of the trailer
    with pytest.raises(BodyError) as caught:
        decode_content(bytes(good), "gzip", MIB)
    assert caught.value.status == 400


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.9])
def test_truncated_gzip_is_a_400(keep: float) -> None:
    body = gzip.compress(os.urandom(4000))
    with pytest.raises(BodyError) as caught:
        decode_content(body[: int(len(body) * keep)], "gzip", MIB)
    assert type(caught.value) is BodyError
    assert caught.value.status == 400


def test_truncated_deflate_is_a_400() -> None:
    for body in (zlib.compress(os.urandom(4000)), raw_deflate(os.urandom(4000))):
        with pytest.raises(BodyError) as caught:
            decode_content(body[: len(body) // 2], "deflate", MIB)
        assert caught.value.status == 400


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, br", "deflate;q=1", "lz4"])
def test_unknown_encoding_is_a_415(encoding: str) -> None:
    with pytest.raises(UnsupportedEncoding) as caught:
        decode_content(gzip.compress(PAYLOAD), encoding, MIB)
    assert caught.value.status == 415
    assert encoding in str(caught.value)


def _bomb(decoded_size: int, wbits: int = 16 + zlib.MAX_WBITS, chunk: int = MIB) -> bytes:
    """gzip (or zlib) of `decoded_size` zero bytes, built without holding them in memory."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = bytes(chunk)
    parts = [compressor.compress(zeros) for _ in range(decoded_size // chunk)]
    parts.append(compressor.flush())
    return b"".join(parts)


@pytest.mark.parametrize(
    ("encoding", "wbits"),
    [("gzip", 16 + zlib.MAX_WBITS), ("deflate", zlib.MAX_WBITS), ("deflate", -zlib.MAX_WBITS)],
    ids=["gzip", "deflate-zlib", "deflate-raw"],
)
def test_a_decompression_bomb_is_refused_without_inflating_it(encoding: str, wbits: int) -> None:
    bomb = _bomb(100 * MIB, wbits)
    assert len(bomb) < 200_000  # 100 MiB of zeros compresses to about 100 KB

    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge) as caught:
            decode_content(bomb, encoding, 5 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.status == 413
    # The limit is 5 MiB: decoding may hold about that much, never the 100 MiB the bomb expands to.
    assert peak < 20 * MIB, f"decoding allocated {peak / MIB:.1f} MiB"


def test_a_bomb_hidden_in_a_later_gzip_member_is_refused_too() -> None:
    body = gzip.compress(PAYLOAD) + _bomb(100 * MIB)
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge):
            decode_content(body, "gzip", 5 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * MIB


def test_zstd_where_allowed_in_one_or_several_frames() -> None:
    import zstandard

    one = zstandard.ZstdCompressor().compress(PAYLOAD)
    assert decode_content(one, "zstd", len(PAYLOAD), allow_zstd=True) == PAYLOAD
    two = one + zstandard.ZstdCompressor().compress(b"tail")
    assert decode_content(two, "zstd", len(PAYLOAD) + 4, allow_zstd=True) == PAYLOAD + b"tail"
    with pytest.raises(UnsupportedEncoding) as caught:
        decode_content(one, "zstd", len(PAYLOAD))
    assert "gzip, deflate or identity" in str(caught.value)


def test_zstd_bomb_stops_at_the_limit_without_inflating_it() -> None:
    import zstandard

    bomb = zstandard.ZstdCompressor(level=19).compress(b"\0" * (256 * MIB))
    assert len(bomb) < 64 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge):
            decode_content(bomb, "zstd", 5 * MIB, allow_zstd=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * MIB


def test_zstd_that_is_not_zstd_is_a_bad_request() -> None:
    with pytest.raises(BodyError) as caught:
        decode_content(b"not zstd at all", "zstd", MIB, allow_zstd=True)
    assert caught.value.status == 400 and "zstd" in str(caught.value)
