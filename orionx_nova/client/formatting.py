"""Rendering API answers as plain-text tables or JSON."""

import json


def _cell(value):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def table(rows, columns):
    """``rows`` (dicts) as an aligned table of ``columns``: a list of
    ``(header, key)`` where key is a dict key or a function of the row."""
    headers = [header for header, _key in columns]
    cells = [
        [_cell(key(row) if callable(key) else row.get(key)) for _header, key in columns]
        for row in rows
    ]
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for line in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    if not rows:
        lines.append("(none)")
    return "\n".join(lines)


def _flatten(item, prefix=""):
    # Nested objects (the summary's per-pool totals) read better as one
    # dotted field per line than as a JSON blob in one cell.
    for key, value in item.items():
        name = prefix + str(key)
        if isinstance(value, dict) and value:
            yield from _flatten(value, name + ".")
        else:
            yield name, value


def fields(item, skip=()):
    """One object as a two-column FIELD / VALUE table."""
    rows = [{"field": k, "value": v} for k, v in _flatten(item) if k not in skip]
    return table(rows, [("FIELD", "field"), ("VALUE", "value")])


def as_json(data):
    return json.dumps(data, indent=2, sort_keys=True)
