"""A watch body's HTTP/1.1 chunked framing, decoded from large blocks into complete lines.

The kube-apiserver flushes every watch event, so each watch line comes as one
HTTP chunk (``<size hex>\\r\\n<line>\\n\\r\\n``). urllib3 decodes a chunked body
one chunk at a time (a ``readline`` for the size, a read for the data, a read for
the CRLF, a generator step), a few µs per line in Python; with the socket read
in blocks of up to 64 KiB and the framing cut out of each block here, a read
that brought 150 lines costs a handful of calls, and the watch loop gets all of
its complete lines at once (one handoff to the pipeline thread per read,
``running.py``). Framing errors are :class:`ChunkError`, which the reader turns
into a cut stream (``kubeapi.py``) once
the lines before them are handed on.
"""

from __future__ import annotations

MAX_SIZE_LINE = 1024
"""Longest chunk-size line (with extensions) accepted; urllib3 allows 65,536, but an
apiserver writes a few hex digits."""


class ChunkError(ValueError):
    """The body is not valid chunked framing (what and where in the message)."""


class ChunkedLines:
    """Feed it raw body bytes; it returns the complete lines they finish (blank ones left out).

    ``done`` becomes True at the last chunk (size 0); what follows it (trailers)
    is not read. ``partial`` is the start of a line no newline has ended yet.
    ``error`` is set at the first framing error; the lines of the chunks before it
    are still returned, nothing after it is read.
    """

    def __init__(self) -> None:
        self._raw = bytearray()
        self.partial = b""
        self.done = False
        self.error: ChunkError | None = None

    def feed(self, block: bytes) -> list[bytes]:
        """The complete non-blank lines that ``block`` finishes, in order (none once done:
        the trailers after the last chunk are not read)."""
        if self.done or self.error is not None:
            return []
        raw = self._raw
        raw += block
        pieces: list[bytes | bytearray] = []
        pos, n = 0, len(raw)
        find = raw.find
        while True:
            eol = find(b"\r\n", pos)
            if eol < 0:
                if n - pos > MAX_SIZE_LINE:
                    self.error = ChunkError(f"chunk size line longer than {MAX_SIZE_LINE} bytes")
                break
            head = bytes(raw[pos:eol])
            try:
                size = int(head.split(b";", 1)[0], 16)
            except ValueError:
                size = -1
            if size < 0:
                self.error = ChunkError(f"invalid chunk size line {head[:40]!r}")
                break
            if size == 0:
                self.done = True
                pos = n
                break
            start = eol + 2
            end = start + size
            if end + 2 > n:
                break  # the chunk is not complete yet: parsed again with the next block
            if raw[end : end + 2] != b"\r\n":
                self.error = ChunkError(f"chunk of {size} bytes not followed by CRLF")
                break
            pieces.append(raw[start:end])
            pos = end + 2
        del raw[:pos]
        if not pieces:
            return []
        data = self.partial + b"".join(pieces)
        *lines, self.partial = data.split(b"\n")
        return [line for line in lines if line and not line.isspace()]
