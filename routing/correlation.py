"""Matching an operator's receipt to the part we sent: message id normalisation.

Reference section 10.4: operators write the same id in hex in submit_sm_resp and decimal in
the receipt (or the reverse), change case, add or strip leading zeros. We store the id as
given (trimmed); lookups try the exact form, then the normalised form (upper case, no
leading zeros), then hex→decimal and decimal→hex, as the operator's ``id_format`` allows.
"""

from __future__ import annotations

import string

__all__ = ["normalise", "id_variants"]

_HEX = frozenset(string.hexdigits)


def normalise(operator_id: str) -> str:
    """Trimmed, upper-cased, leading zeros stripped ("0" stays "0")."""
    s = operator_id.strip().upper().lstrip("0")
    return s or ("0" if operator_id.strip() else "")


def id_variants(operator_id: str, id_format: str) -> list[str]:
    """Normalised forms under which a receipt's id may have been stored, best first.

    ``id_format``: "opaque" (exact only), "hex" (the operator answers in hex, its receipts may
    be decimal), "decimal" (the reverse), or "auto" (try both conversions).
    """
    base = normalise(operator_id)
    if not base or id_format == "opaque":
        return [base]
    out = [base]
    if id_format in ("hex", "auto") and base.isascii() and base.isdigit():
        out.append(normalise(f"{int(base):X}"))  # a decimal receipt id for a hex resp id
    if id_format in ("decimal", "auto") and all(c in _HEX for c in base):
        out.append(normalise(str(int(base, 16))))  # a hex receipt id for a decimal resp id
    return list(dict.fromkeys(out))
