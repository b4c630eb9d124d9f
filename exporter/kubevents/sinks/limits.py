"""Content limits for network sinks: cut oversized text, make every string encodable.

An Event's message and fields come from whatever wrote the Event (or from a
replayed file), so a network sink must not trust them:

* a body longer than ``max_body_bytes`` (UTF-8) is cut at a character
  boundary and the record gets ``kubevents.truncated=true``; so is any string
  attribute longer than ``max_attribute_bytes`` (Loki rejects an entry whose
  structured metadata passes 64 KB, and the Collector a request past 4 MiB);
* a string that cannot be encoded as UTF-8 (a lone surrogate from a JSON
  ``\\ud800`` escape) would make protobuf serialization raise and lose the
  whole batch: it is re-encoded with U+FFFD replacement characters.

Escaping for a particular wire format (Loki's label selector text) is the
encoder's job; here the content is only made safe to carry. The common case,
short ASCII text, costs one length check and one ``isascii`` per string.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

from kubevents import conventions as c
from kubevents.records import AttrValue, OutputRecord

# Built with chr(): the compiled build (mypyc) rejects surrogates in string literals.
_SURROGATE: Final = re.compile(f"[{chr(0xD800)}-{chr(0xDFFF)}]")


def clean_text(text: str, max_bytes: int) -> tuple[str, bool]:
    """``text`` made UTF-8 encodable and cut to ``max_bytes``; also whether it was cut."""
    if text.isascii():
        return (text, False) if len(text) <= max_bytes else (text[:max_bytes], True)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: one U+FFFD each
        text = _SURROGATE.sub("\ufffd", text)
        data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text, False
    # Cut on a byte boundary, then drop the partial character at the end.
    return data[:max_bytes].decode("utf-8", "ignore"), True


def limit_record(
    record: OutputRecord, *, max_body_bytes: int, max_attribute_bytes: int
) -> OutputRecord:
    """``record`` within the limits (the very same object when nothing had to change)."""
    body = record.body
    cut = False
    # Each string's common case (short ASCII) is tested here, without a call to clean_text
    # and the tuple it returns: its length and isascii are all it needs.
    if len(body) > max_body_bytes or not body.isascii():
        body, cut = clean_text(body, max_body_bytes)
    namespace = record.namespace
    if len(namespace) > max_attribute_bytes or not namespace.isascii():
        namespace, _ = clean_text(namespace, max_attribute_bytes)
    changed: dict[str, AttrValue] = {}
    for key, value in record.attributes.items():
        if isinstance(value, str):
            if len(value) <= max_attribute_bytes and value.isascii():
                continue
            new, was_cut = clean_text(value, max_attribute_bytes)
            if new != value:
                changed[key] = new
        elif isinstance(value, list):
            pairs = [clean_text(v, max_attribute_bytes) for v in value]
            was_cut = any(p[1] for p in pairs)
            if any(p[0] != v for p, v in zip(pairs, value, strict=True)):
                changed[key] = [p[0] for p in pairs]
        else:
            continue
        cut = cut or was_cut
    if not cut and not changed and body == record.body and namespace == record.namespace:
        return record
    attrs = {**record.attributes, **changed}
    if cut:
        attrs[c.KV_TRUNCATED] = True
    return replace(record, body=body, namespace=namespace, attributes=attrs)


def limit_records(
    records: Sequence[OutputRecord], *, max_body_bytes: int, max_attribute_bytes: int
) -> tuple[list[OutputRecord], int]:
    """:func:`limit_record` of each of ``records``, and how many of them it changed."""
    out: list[OutputRecord] = []
    changed = 0
    for record in records:
        clean = limit_record(
            record, max_body_bytes=max_body_bytes, max_attribute_bytes=max_attribute_bytes
        )
        if clean is not record:
            changed += 1
        out.append(clean)
    return out, changed
