"""The AWS provider's schema, offline: built from the `.jsii` type description that the npm package
`@cdktf/provider-aws` ships (generated from the Terraform AWS provider), and saved as a compact
JSON file that `tfcheck.py` reads.

    python provider_schema.py build PATH/.jsii OUT.json

Each resource and data source type maps to its configuration: every argument and nested block by
its Terraform name (taken from the registry link in the docs, never guessed from camelCase), whether
it is required, and its type.
"""

import json
import re
import sys

# "Represents a {@link https://registry.terraform.io/.../docs/resources/lambda_function aws_lambda_function}."
REPRESENTS = re.compile(r"docs/(resources|data-sources)/\w+ (aws_\w+)\}")
# "{@link https://.../lambda_function#function_name LambdaFunction#function_name}"
ANCHOR = re.compile(r"#(\w+) \w+#\w+\}")


def _primitives_and_fqns(t, prims, fqns, collections):
    if "primitive" in t:
        prims.add(t["primitive"])
    elif "fqn" in t:
        if not t["fqn"].startswith("cdktf."):
            fqns.add(t["fqn"])
    elif "collection" in t:
        collections.add(t["collection"]["kind"])
        _primitives_and_fqns(t["collection"]["elementtype"], prims, fqns, set())
    elif "union" in t:
        for u in t["union"]["types"]:
            _primitives_and_fqns(u, prims, fqns, collections)


def _argument(prop):
    docs = prop.get("docs", {})
    text = docs.get("summary", "") + " " + docs.get("remarks", "")
    m = ANCHOR.search(text)
    name = m.group(1) if m else re.sub(r"([A-Z])", r"_\1", prop["name"]).lower()
    prims, fqns, collections = set(), set(), set()
    _primitives_and_fqns(prop["type"], prims, fqns, collections)
    arg = {"required": not prop.get("optional", False)}
    if docs.get("summary", "").endswith(" block.") and fqns:
        arg["block"] = sorted(fqns)[0]
    elif "array" in collections:
        arg["type"] = "list"
    elif "map" in collections:
        arg["type"] = "map"
    elif fqns:
        arg["type"] = "object"
    elif len(prims) == 1:
        arg["type"] = {"string": "string", "number": "number", "boolean": "bool"}.get(next(iter(prims)), "any")
    else:
        arg["type"] = "any"
    return name, arg


def build(jsii_path):
    types = json.load(open(jsii_path))["types"]
    interfaces = {}

    def interface(fqn):
        if fqn in interfaces:
            return
        interfaces[fqn] = {}  # placeholder: types may refer to themselves
        args = {}
        for prop in types.get(fqn, {}).get("properties", []):
            name, arg = _argument(prop)
            args[name] = arg
            if "block" in arg:
                interface(arg["block"])
        interfaces[fqn] = args

    schema = {"resource": {}, "data": {}}
    for t in types.values():
        if t.get("kind") != "class":
            continue
        m = REPRESENTS.search(t.get("docs", {}).get("summary", ""))
        if not m:
            continue
        params = (t.get("initializer") or {}).get("parameters", [])
        config = next((p["type"].get("fqn") for p in params if p["name"] == "config"), None)
        if not config:
            continue
        interface(config)
        kind = "resource" if m.group(1) == "resources" else "data"
        schema[kind][m.group(2)] = config
    schema["interfaces"] = interfaces
    return schema


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "build":
        sys.exit("usage: provider_schema.py build PATH/.jsii OUT.json")
    schema = build(sys.argv[2])
    with open(sys.argv[3], "w") as f:
        json.dump(schema, f, separators=(",", ":"))
    print(f"{len(schema['resource'])} resource and {len(schema['data'])} data source types", file=sys.stderr)
