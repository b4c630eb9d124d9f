"""Message templates: an Event message with its variable parts masked.

Two Events say the same thing when their messages differ only in names,
numbers, addresses and the like::

    Back-off restarting failed container web in pod web-7d4f8b9c5d-x2x9k_shop(1b4e28ba-2fa1-11d2-883f-0016d3cca427)
    Back-off restarting failed container web in pod <name>_shop(<uid>)

A pattern key may include the template so that such Events group together
while different problems of the same reason (a liveness and a readiness
probe failure, an image that is missing and one that is forbidden) stay
apart.

One regular expression with named alternatives does the masking in a single
left-to-right pass. At a given position the alternatives are tried in the
order below, so a quoted string is masked whole before anything inside it
could be, and a UID before its hex groups look like numbers:

========== ==================================================== ============
placeholder what                                                  example
========== ==================================================== ============
``<str>``  a single- or double-quoted string                    ``"nginx:1.27"``
``<uid>``  a UUID                                               ``1b4e28ba-2fa1-…``
``<ip>``   an IPv4 address (with an optional port) or IPv6      ``10.244.1.5:8080``, ``fd00::5``
``<dur>``  a Go duration                                        ``5m0s``, ``1.234s``
``<hash>`` 8+ hex characters with a digit and a letter          ``sha256:3f5a…``
``<name>`` a generated name: a DNS label with one or more       ``web-7d4f8b9c5d-x2x9k``
           generated suffixes (5-10 characters of the
           Kubernetes random alphabet, which has no vowels)
``<num>``  a number not glued to a letter before it             ``0/3``, ``503``, ``1.4.2``
========== ==================================================== ============

Runs of whitespace become one space. Only the first ``MAX_MESSAGE`` characters
are looked at, which bounds the cost of a pathological message. Results are
cached (bounded): a recurring Event repeats the same message, and different
messages share most of their words, so the expression runs on each distinct
piece once (see ``_PIECE``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

MAX_MESSAGE: Final = 512
"""Characters of a message that are templated; the rest is dropped."""

# The Kubernetes name generator's alphabet (k8s.io/apimachinery/pkg/util/rand):
# consonants and digits without 0, 1 and 3, so words rarely look generated.
_GEN = "[bcdfghjklmnpqrstvwxz2456789]"
_HEX4 = "[0-9a-fA-F]{1,4}"
_UNIT = r"(?:ns|us|µs|ms|s|m|h)"
_NUMBER = r"\d+(?:\.\d+)?"

_TOKEN = re.compile(
    rf"""
    (?P<str>"[^"\n]*"|'[^'\n]*')
  | (?P<uid>\b[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}\b)
  | (?P<ip>
        (?<![\w.])(?:\d{{1,3}}\.){{3}}\d{{1,3}}(?::\d{{1,5}})?(?![\w.])
      | (?<![\w:])(?:{_HEX4}:){{7}}{_HEX4}(?![\w:])
      | (?<![\w:])(?:{_HEX4}:){{1,6}}(?::{_HEX4}){{1,6}}(?![\w:])
      | (?<![\w:])(?:{_HEX4}:){{1,7}}:(?![\w:])
      | (?<![\w:])::(?:{_HEX4}:){{0,5}}{_HEX4}(?![\w:])
    )
  | (?P<dur>(?<![\w.]){_NUMBER}{_UNIT}(?:{_NUMBER}{_UNIT})*(?![\w.]))
  | (?P<hash>(?<![\w-])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{{8,}}(?![\w-]))
  | (?P<name>(?<![\w.-])[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:-{_GEN}{{5,10}})+(?![a-zA-Z0-9-]))
  | (?P<num>(?<![A-Za-z\d])\d+(?:\.\d+)*)
    """,
    re.VERBOSE,
)
_SPACE = re.compile(r"\s+")
_PLACEHOLDER: Final = {
    "str": "<str>",
    "uid": "<uid>",
    "ip": "<ip>",
    "dur": "<dur>",
    "hash": "<hash>",
    "name": "<name>",
    "num": "<num>",
}


def _placeholder(match: re.Match[str]) -> str:
    return _PLACEHOLDER[match.lastgroup or "num"]


# Messages are cut into quoted strings, runs of other non-space characters,
# and single characters (a space, a lone quote). No mask spans a space or a
# quote, and no lookaround of _TOKEN looks at one, so masking piece by piece
# gives exactly what masking the whole message gives, and pieces repeat far
# more than messages do ("Failed", "to", "pull", "image"...): each is masked
# once, then looked up.
_PIECE = re.compile(r""""[^"\n]*"|'[^'\n]*'|[^ "']+|.""")
_PIECES_MAX: Final = 16384
_pieces: dict[str, str] = {}


def _mask(piece: str) -> str:
    masked = _pieces.get(piece)
    if masked is None:
        if piece[0] in "\"'" and len(piece) > 1:
            masked = "<str>"
        else:
            masked = _TOKEN.sub(_placeholder, piece)
        if len(_pieces) >= _PIECES_MAX:
            _pieces.clear()  # bounded; the results do not change
        _pieces[piece] = masked
    return masked


@lru_cache(maxsize=4096)
def template(message: str) -> str:
    """The message with its variable parts replaced by placeholders.

    Pure and deterministic; the same message always gives the same template.
    """
    text = _SPACE.sub(" ", message[:MAX_MESSAGE]).strip()
    return "".join([_mask(piece) for piece in _PIECE.findall(text)])
