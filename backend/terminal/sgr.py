"""SGR parameter strings to the integer lists pyte understands, including ITU T.416 colon forms.

pyte's parser stops a CSI at the first ``:``; modern programs send ``38:2::r:g:b`` and ``38:5:n``.
Colon groups are rewritten to their semicolon equivalents so pyte's own SGR logic applies.
"""

from __future__ import annotations

_MAX = 9999


def _int(value: str) -> int:
    return min(int(value or 0), _MAX)


def sgr_params(params: str) -> list[int]:
    """Parameters as pyte's parser would produce them, with colon sub-parameters understood."""
    if ":" not in params:
        return [_int(p) for p in params.split(";")]
    out: list[int] = []
    for group in params.split(";"):
        if ":" not in group:
            out.append(_int(group))
            continue
        subs = group.split(":")
        head = _int(subs[0])
        if head in (38, 48) and len(subs) > 1:
            kind = _int(subs[1])
            if kind == 2 and len(subs) >= 5:
                out.extend([head, 2, *(_int(v) for v in subs[-3:])])
            elif kind == 5 and len(subs) >= 3:
                out.extend([head, 5, _int(subs[2])])
        elif head == 58:
            continue  # Underline colour: not represented by pyte's cells.
        elif head == 4 and len(subs) > 1:
            out.append(24 if _int(subs[1]) == 0 else 4)  # Curly/dotted underlines are underlines.
        else:
            out.append(head)
    return out
