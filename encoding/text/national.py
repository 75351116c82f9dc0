"""National language shift tables of 3GPP TS 23.038 (Release 8+), Annex A: decoding only.

Owns the Turkish, Spanish and Portuguese tables selected by the UDH information elements
IEI 0x24 (single shift, replaces the default extension table) and IEI 0x25 (locking shift,
replaces the default alphabet) of 3GPP TS 23.040 section 9.2.3.24.15/16, each with a
one-octet language id (reference section 8.5):

* A.2.1 / A.3.1 Turkish (id 1): single shift and locking shift.
* A.2.2 Spanish (id 2): single shift only; its locking shift entry (A.3.2) is void, so a
  locking shift id 2 falls back to the default alphabet.
* A.2.3 / A.3.3 Portuguese (id 3): single shift and locking shift.

Other ids (the Indian languages, 4-13) are not carried: they decode with the default tables.
Encoding with these tables is optional (reference section 8.5) and not offered.
"""

from __future__ import annotations

__all__ = [
    "COMMON_SHIFT",
    "LANGUAGE_NAMES",
    "LOCKING_SHIFT_TABLES",
    "SINGLE_SHIFT_TABLES",
]

LANGUAGE_NAMES: dict[int, str] = {1: "turkish", 2: "spanish", 3: "portuguese"}

# Locking shift tables: 128 characters, index = septet value; 0x1B is the escape (kept as
# "\x1b" here, it never reaches a lookup).
_TURKISH_LOCKING = (
    # 0x00-0x0F
    "@\u00a3$\u00a5\u20ac\u00e9\u00f9\u0131\u00f2\u00c7\n\u011e\u011f\r\u00c5\u00e5"
    # 0x10-0x1F
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\x1b\u015e\u015f\u00df\u00c9"
    # 0x20-0x3F
    " !\"#\u00a4%&'()*+,-./0123456789:;<=>?"
    # 0x40-0x5F
    "\u0130ABCDEFGHIJKLMNOPQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7"
    # 0x60-0x7F
    "\u00e7abcdefghijklmnopqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0"
)

_PORTUGUESE_LOCKING = (
    # 0x00-0x0F
    "@\u00a3$\u00a5\u00ea\u00e9\u00fa\u00ed\u00f3\u00e7\n\u00d4\u00f4\r\u00c1\u00e1"
    # 0x10-0x1F
    "\u0394_\u00aa\u00c7\u00c0\u221e^\\\u20ac\u00d3|\x1b\u00c2\u00e2\u00ca\u00c9"
    # 0x20-0x3F
    " !\"#\u00ba%&'()*+,-./0123456789:;<=>?"
    # 0x40-0x5F
    "\u00cdABCDEFGHIJKLMNOPQRSTUVWXYZ\u00c3\u00d5\u00da\u00dc\u00a7"
    # 0x60-0x7F
    "~abcdefghijklmnopqrstuvwxyz\u00e3\u00f5`\u00fc\u00e0"
)

LOCKING_SHIFT_TABLES: dict[int, str] = {1: _TURKISH_LOCKING, 3: _PORTUGUESE_LOCKING}

# Entries every single shift table shares with the default extension table (6.2.1.1).
COMMON_SHIFT: dict[int, str] = {
    0x0A: "\x0c",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
}

_TURKISH_SINGLE: dict[int, str] = {
    **COMMON_SHIFT,
    0x47: "\u011e",  # Ğ
    0x49: "\u0130",  # İ
    0x53: "\u015e",  # Ş
    0x63: "\u00e7",  # ç
    0x65: "\u20ac",  # €
    0x67: "\u011f",  # ğ
    0x69: "\u0131",  # ı
    0x73: "\u015f",  # ş
}

_SPANISH_SINGLE: dict[int, str] = {
    **COMMON_SHIFT,
    0x09: "\u00e7",  # ç
    0x41: "\u00c1",  # Á
    0x49: "\u00cd",  # Í
    0x4F: "\u00d3",  # Ó
    0x55: "\u00da",  # Ú
    0x61: "\u00e1",  # á
    0x65: "\u20ac",  # €
    0x69: "\u00ed",  # í
    0x6F: "\u00f3",  # ó
    0x75: "\u00fa",  # ú
}

_PORTUGUESE_SINGLE: dict[int, str] = {
    **COMMON_SHIFT,
    0x05: "\u00ea",  # ê
    0x09: "\u00e7",  # ç
    0x0B: "\u00d4",  # Ô
    0x0C: "\u00f4",  # ô
    0x0E: "\u00c1",  # Á
    0x0F: "\u00e1",  # á
    0x12: "\u03a6",  # Φ
    0x13: "\u0393",  # Γ
    0x15: "\u03a9",  # Ω
    0x16: "\u03a0",  # Π
    0x17: "\u03a8",  # Ψ
    0x18: "\u03a3",  # Σ
    0x19: "\u0398",  # Θ
    0x1F: "\u00ca",  # Ê
    0x41: "\u00c0",  # À
    0x49: "\u00cd",  # Í
    0x4F: "\u00d3",  # Ó
    0x55: "\u00da",  # Ú
    0x5B: "\u00c3",  # Ã
    0x5C: "\u00d5",  # Õ
    0x61: "\u00c2",  # Â
    0x65: "\u20ac",  # €
    0x69: "\u00ed",  # í
    0x6F: "\u00f3",  # ó
    0x75: "\u00fa",  # ú
    0x7B: "\u00e3",  # ã
    0x7C: "\u00f5",  # õ
    0x7F: "\u00e2",  # â
}

SINGLE_SHIFT_TABLES: dict[int, dict[int, str]] = {
    1: _TURKISH_SINGLE,
    2: _SPANISH_SINGLE,
    3: _PORTUGUESE_SINGLE,
}

assert len(_TURKISH_LOCKING) == 128
assert len(_PORTUGUESE_LOCKING) == 128
