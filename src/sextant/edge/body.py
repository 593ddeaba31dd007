"""Reading request bodies within limits, decompressing without ever inflating past the limit."""

from __future__ import annotations

import io
import zlib

import zstandard
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive


class BodyError(Exception):
    """A body that cannot be accepted; `status` is the HTTP status the faces answer with."""

    status = 400


class BodyTooLarge(BodyError):
    status = 413


class UnsupportedEncoding(BodyError):
    status = 415


async def read_body(
    receive: Receive, headers: Headers, *, max_bytes: int, max_decoded: int, allow_zstd: bool = False
) -> bytes:
    """The request body after Content-Encoding, at most `max_decoded` bytes of it. zstd only where the
    vendor's endpoint takes it (`allow_zstd`)."""
    raw = await read_raw_body(receive, headers.get("content-length"), max_bytes)
    return decode_content(raw, headers.get("content-encoding", ""), max_decoded, allow_zstd=allow_zstd)


async def read_raw_body(
    receive: Receive, content_length: str | None, max_bytes: int, *, first: Message | None = None
) -> bytes:
    """The request body as sent, at most `max_bytes` of it; `content_length` is the header's value, `first`
    the body's first message when the caller has received it already."""
    if content_length is not None and content_length.isdigit() and int(content_length) > max_bytes:
        raise BodyTooLarge(f"request body is {content_length} bytes; the limit is {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive() if first is None else first
        first = None
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(f"request body is larger than allowed; the limit is {max_bytes} bytes")
        if not message.get("more_body", False):
            # A small body, the intake's usual, is the first and only message: no list to join.
            return b"".join((*chunks, chunk)) if chunks else chunk
        chunks.append(chunk)


def decode_content(raw: bytes, content_encoding: str, max_decoded: int, *, allow_zstd: bool = False) -> bytes:
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        if len(raw) > max_decoded:
            raise BodyTooLarge(f"request body is larger than allowed; the limit is {max_decoded} bytes")
        return raw
    if encoding in ("gzip", "x-gzip"):
        return _inflate(raw, 16 + zlib.MAX_WBITS, max_decoded, "gzip")
    if encoding == "deflate":
        # RFC 9110 "deflate" is zlib-wrapped, but many senders send raw deflate; accept both.
        try:
            return _inflate(raw, zlib.MAX_WBITS, max_decoded, "deflate")
        except BodyTooLarge:
            raise
        except BodyError:
            return _inflate(raw, -zlib.MAX_WBITS, max_decoded, "deflate")
    if encoding in ("zstd", "zstd1") and allow_zstd:
        return _unzstd(raw, max_decoded)
    supported = "gzip, deflate, zstd or identity" if allow_zstd else "gzip, deflate or identity"
    raise UnsupportedEncoding(f"Content-Encoding {content_encoding!r} is not supported; use {supported}")


def _unzstd(raw: bytes, max_decoded: int) -> bytes:
    # Read one byte past the limit: a body that yields it is too large, and no more is ever inflated.
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw), read_across_frames=True)
    try:
        out = reader.read(max_decoded + 1)
    except zstandard.ZstdError as exc:
        raise BodyError(f"request body is not valid zstd data: {exc}") from exc
    if len(out) > max_decoded:
        raise BodyTooLarge(
            f"decompressed request body is larger than allowed; the limit is {max_decoded} bytes"
        )
    return out


def _inflate(raw: bytes, wbits: int, max_decoded: int, name: str) -> bytes:
    out: list[bytes] = []
    size = 0
    data = raw
    # A gzip body may hold several members back to back; each gets its own decompressor.
    while data:
        inflater = zlib.decompressobj(wbits)
        try:
            piece = inflater.decompress(data, max_decoded - size + 1)
        except zlib.error as exc:
            raise BodyError(f"request body is not valid {name} data: {exc}") from exc
        size += len(piece)
        if size > max_decoded or inflater.unconsumed_tail:
            raise BodyTooLarge(
                f"decompressed request body is larger than allowed; the limit is {max_decoded} bytes"
            )
        if not inflater.eof:
            raise BodyError(f"request body is truncated {name} data")
        out.append(piece)
        data = inflater.unused_data if wbits > 16 else b""
    return b"".join(out)
