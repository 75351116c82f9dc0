"""Micro-benchmarks of the sans-IO core: ``python -m bench.micro [--quick]``.

``bench.micro.codec`` times our PDU codec against python-smpplib's in the same run (and the
text split when ``encoding.text.split_text`` is available), prints a table and, as its last
line, one JSON object.
"""
