"""An EventBridge event pattern matcher, for testing our rules' patterns offline.

moto's matching is not enough (patterns through arrays of objects never match there), and no
AWS-compatible matcher is installable here, so this one follows the EventBridge documentation:

- a pattern is an object; every key must match (AND); a field's list of matchers is an OR;
- a leaf matcher is a literal (string, number, boolean, null) or an object: prefix, suffix,
  anything-but (values, or {prefix}/{suffix}), exists, numeric, equals-ignore-case, wildcard, cidr
  is not supported (it raises);
- when the event's value is an array, the field matches if any element matches;
- a nested pattern object walks into the event; through an array of objects, it matches if any
  element matches.
"""

import fnmatch
import re

_MISSING = object()


def matches(pattern, event):
    if not isinstance(pattern, dict):
        raise ValueError("a pattern is an object")
    return _match_object(pattern, event)


def _match_object(pattern, value):
    # Walking into an array of objects: any element may match the whole sub-pattern.
    if isinstance(value, list):
        return any(_match_object(pattern, v) for v in value)
    for key, sub in pattern.items():
        if key == "$or":
            if not any(_match_object(p, value) for p in sub):
                return False
            continue
        child = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
        if isinstance(sub, dict):
            if child is _MISSING or not _match_object(sub, child):
                return False
        elif isinstance(sub, list):
            if not _match_field(sub, child):
                return False
        else:
            raise ValueError(f"{key}: a pattern field holds a list of matchers or an object")
    return True


def _match_field(matchers, value):
    # "exists": false is the only matcher that can match a missing field.
    if value is _MISSING:
        return any(isinstance(m, dict) and m.get("exists") is False for m in matchers)
    values = value if isinstance(value, list) else [value]
    return any(_leaf(m, v) for m in matchers for v in values)


def _leaf(m, v):
    if not isinstance(m, dict):
        # Literals: numbers compare numerically, everything else exactly (with type).
        if isinstance(m, (int, float)) and not isinstance(m, bool):
            return isinstance(v, (int, float)) and not isinstance(v, bool) and float(m) == float(v)
        return type(m) is type(v) and m == v
    if len(m) != 1:
        raise ValueError(f"one operator per matcher: {m}")
    (op, arg), = m.items()
    if op == "exists":
        return arg is True  # the field is present (a missing one was handled above)
    if op == "prefix":
        if isinstance(arg, dict):
            return isinstance(v, str) and v.lower().startswith(arg["equals-ignore-case"].lower())
        return isinstance(v, str) and v.startswith(arg)
    if op == "suffix":
        if isinstance(arg, dict):
            return isinstance(v, str) and v.lower().endswith(arg["equals-ignore-case"].lower())
        return isinstance(v, str) and v.endswith(arg)
    if op == "equals-ignore-case":
        return isinstance(v, str) and v.lower() == arg.lower()
    if op == "wildcard":
        return isinstance(v, str) and fnmatch.fnmatchcase(v, arg)
    if op == "anything-but":
        if isinstance(arg, dict):
            return not _leaf(arg, v) if isinstance(v, str) else True
        excluded = arg if isinstance(arg, list) else [arg]
        return not any(_leaf(x, v) for x in excluded)
    if op == "numeric":
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return False
        ops = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__, "=": float.__eq__}
        for i in range(0, len(arg), 2):
            if not ops[arg[i]](float(v), float(arg[i + 1])):
                return False
        return True
    if op == "cidr":
        raise NotImplementedError("cidr matching is not implemented")
    raise ValueError(f"unknown matcher {op!r}")
