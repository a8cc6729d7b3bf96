"""What `terraform validate` checks, offline: every AWS `resource` and `data` block against the
provider's schema (`provider_schema.py`), and every reference against what the module declares.

    problems = check_module(Path("infra"), schema)   # the root module and the modules it calls

Reported, each as "file: block: problem":
- an unknown resource or data source type, argument or nested block (meta-arguments and `dynamic`
  blocks understood);
- a missing required argument or block;
- a literal of a type that cannot convert (a word where a number or bool is required, a number
  where a bool is, a scalar where a list or map is);
- a reference to an undeclared `var.*`, `local.*`, `module.<name>`, module output, resource or data
  source;
- a module call that leaves out a required variable of the module or passes one it does not declare.

Values computed by expressions are not typed: that needs Terraform's evaluator (`terraform plan`).
"""

import re
from pathlib import Path

import hcl2

META_ARGUMENTS = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"}
MODULE_META = {"source", "version", "count", "for_each", "depends_on", "providers"}
MARK = "__is_block__"


def _strip(key):
    """python-hcl2 keeps the quotes of labels and string literals."""
    return key[1:-1] if isinstance(key, str) and len(key) >= 2 and key[0] == key[-1] == '"' else key


def _is_expression(v):
    return isinstance(v, str) and "${" in v


def _literal_problem(value, want):
    """Why a literal cannot be of type `want`, or None (expressions are not typed here)."""
    if _is_expression(value) or want in (None, "any", "object"):
        return None
    if isinstance(value, bool):
        kind = "bool"
    elif isinstance(value, (int, float)):
        kind = "number"
    elif isinstance(value, str):
        kind = "string"
    elif isinstance(value, list):
        kind = "list"
    elif isinstance(value, dict):
        kind = "map"
    else:
        return None
    text = _strip(value) if kind == "string" else value
    if want == "number":
        if kind == "number":
            return None
        if kind == "string":
            try:
                float(text)
                return None
            except ValueError:
                pass
        return f"needs a number, got {kind} {value!r}"
    if want == "bool":
        if kind == "bool" or (kind == "string" and text in ("true", "false")):
            return None
        return f"needs a bool, got {kind} {value!r}"
    if want == "string":
        return f"needs a string, got {kind}" if kind in ("list", "map") else None
    if want == "list":
        return None if kind == "list" else f"needs a list, got {kind} {value!r}"
    if want == "map":
        return None if kind == "map" else f"needs a map, got {kind} {value!r}"
    return None


def _check_body(body, fqn, schema, where, problems):
    args = schema["interfaces"].get(fqn, {})
    present = set()
    for key, value in body.items():
        if key == MARK or key.startswith("__"):
            continue
        if key in META_ARGUMENTS:
            continue
        if key == "dynamic":
            for dyn in value if isinstance(value, list) else [value]:
                for label, spec in dyn.items():
                    name = _strip(label)
                    arg = args.get(name)
                    if not arg or "block" not in arg:
                        problems.append(f"{where}: dynamic {name!r} is not a block of this type")
                        continue
                    present.add(name)
                    for content in spec.get("content", []):
                        _check_body(content, arg["block"], schema, f"{where}.{name}", problems)
            continue
        arg = args.get(key)
        if arg is None:
            problems.append(f"{where}: unknown argument or block {key!r}")
            continue
        present.add(key)
        if "block" in arg:
            blocks = value if isinstance(value, list) else [value]
            for b in blocks:
                if isinstance(b, dict) and b.get(MARK):
                    _check_body(b, arg["block"], schema, f"{where}.{key}", problems)
                elif not _is_expression(b):
                    problems.append(f"{where}: {key!r} is a block, written as an argument")
            continue
        if isinstance(value, list) and value and isinstance(value[0], dict) and value[0].get(MARK):
            problems.append(f"{where}: {key!r} is an argument, written as a block")
            continue
        problem = _literal_problem(value, arg.get("type"))
        if problem:
            problems.append(f"{where}: {key}: {problem}")
    for name, arg in args.items():
        if arg["required"] and name not in present:
            what = "block" if "block" in arg else "argument"
            problems.append(f"{where}: missing required {what} {name!r}")


def _expressions(value):
    """Every `${...}` expression inside a parsed value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _expressions(k)
            yield from _expressions(v)
    elif isinstance(value, list):
        for v in value:
            yield from _expressions(v)
    elif isinstance(value, str) and "${" in value:
        yield value


REFERENCES = [
    ("var", re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)")),
    ("local", re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)")),
    ("module", re.compile(r"(?<![\w.])module\.([A-Za-z_][\w-]*)(?:\.([A-Za-z_][\w-]*))?")),
    ("data", re.compile(r"(?<![\w.])data\.(aws_\w+)\.([A-Za-z_][\w-]*)")),
    ("resource", re.compile(r"(?<![\w.\"/:])(aws_\w+)\.([A-Za-z_][\w-]*)")),
]


class Module:
    """One directory of `.tf` files."""

    def __init__(self, path):
        self.path = Path(path)
        self.files = {}
        for f in sorted(self.path.glob("*.tf")):
            with open(f) as fh:
                self.files[f.name] = hcl2.load(fh)
        self.variables, self.locals, self.outputs = {}, set(), set()
        self.resources, self.data, self.calls = set(), set(), {}
        for doc in self.files.values():
            for v in doc.get("variable", []):
                for name, spec in v.items():
                    self.variables[_strip(name)] = "default" in spec
            for block in doc.get("locals", []):
                self.locals.update(k for k in block if not k.startswith("__"))
            for o in doc.get("output", []):
                self.outputs.update(_strip(n) for n in o)
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for r in doc.get(kind, []):
                    for rtype, named in r.items():
                        target.update((_strip(rtype), _strip(n)) for n in named)
            for m in doc.get("module", []):
                for name, spec in m.items():
                    self.calls[_strip(name)] = spec


def check_module(path, schema, seen=None):
    """Problems in the module at `path` and in every local module it calls."""
    seen = set() if seen is None else seen
    path = Path(path).resolve()
    if path in seen:
        return []
    seen.add(path)
    module = Module(path)
    problems = []
    for fname, doc in module.files.items():
        for kind in ("resource", "data"):
            for r in doc.get(kind, []):
                for rtype, named in r.items():
                    rtype = _strip(rtype)
                    if not rtype.startswith("aws_"):
                        continue
                    for name, body in named.items():
                        where = f"{fname}: {kind} {rtype}.{_strip(name)}"
                        fqn = schema[kind].get(rtype)
                        if fqn is None:
                            problems.append(f"{where}: unknown {kind} type {rtype!r}")
                            continue
                        _check_body(body, fqn, schema, where, problems)
        problems += _check_references(module, fname, doc)
    for name, spec in module.calls.items():
        source = _strip(spec.get("source", ""))
        if not source.startswith("."):
            continue
        callee = Module(path / source)
        where = f"module {name}"
        passed = {k for k in spec if not k.startswith("__")}
        for var, has_default in callee.variables.items():
            if not has_default and var not in passed:
                problems.append(f"{where}: missing required variable {var!r} of {source}")
        for k in passed - set(callee.variables) - MODULE_META:
            problems.append(f"{where}: {source} declares no variable {k!r}")
        problems += check_module(path / source, schema, seen)
    return problems


def _check_references(module, fname, doc):
    problems = []
    for expr in _expressions(doc):
        for kind, pattern in REFERENCES:
            for m in pattern.finditer(expr):
                if kind == "var" and m.group(1) not in module.variables:
                    problems.append(f"{fname}: var.{m.group(1)} is not declared")
                elif kind == "local" and m.group(1) not in module.locals:
                    problems.append(f"{fname}: local.{m.group(1)} is not declared")
                elif kind == "module":
                    call = module.calls.get(m.group(1))
                    if call is None:
                        problems.append(f"{fname}: module.{m.group(1)} is not declared")
                    elif m.group(2):
                        source = _strip(call.get("source", ""))
                        if source.startswith(".") and m.group(2) not in Module(module.path / source).outputs:
                            problems.append(f"{fname}: module.{m.group(1)}.{m.group(2)}: {source} has no such output")
                elif kind == "data" and (m.group(1), m.group(2)) not in module.data:
                    problems.append(f"{fname}: data.{m.group(1)}.{m.group(2)} is not declared")
                elif kind == "resource" and (m.group(1), m.group(2)) not in module.resources:
                    problems.append(f"{fname}: {m.group(1)}.{m.group(2)} is not declared")
    return sorted(set(problems))
