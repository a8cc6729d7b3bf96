"""Fails when the modules of a crate import each other in a circle.

Reads every crate's `src/` (not its tests: a `#[cfg(test)]` module's imports are not the
module's own, and comments are skipped), takes `crate::a::...` and `super::a` paths as edges
between modules (a child using its parent, or a parent its child, is not counted), and prints
each strongly connected set of two or more modules. Usage: check-module-cycles.py [crate dir...]
(default: every crate of the workspace)."""
import re, sys, pathlib, itertools
def modules(src):
    mods = {}
    for p in src.rglob("*.rs"):
        rel = p.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "mod": parts = parts[:-1]
        name = "::".join(parts) if parts and parts != ["lib"] and parts != ["main"] else "crate"
        text = "\n".join(l for l in p.read_text().splitlines() if not l.strip().startswith("//"))
        # A test module's imports are not the module's own.
        text = text.split("#[cfg(test)]")[0]
        mods[name] = text
    return mods
def deps(mods, text, me):
    out = set()
    for m in re.finditer(r"crate::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)", text):
        path = m.group(1).split("::")
        # longest module prefix
        for k in range(len(path), 0, -1):
            cand = "::".join(path[:k])
            if cand in mods: 
                out.add(cand); break
    for m in re.finditer(r"\bsuper::([a-z_][a-z0-9_]*)", text):
        parent = me.rsplit("::",1)[0] if "::" in me else "crate"
        cand = (parent + "::" + m.group(1)) if parent != "crate" else m.group(1)
        if cand in mods: out.add(cand)
    out.discard(me)
    # strip test modules' uses? keep simple
    return out
crates = sys.argv[1:] or [str(p.parent) for p in sorted(pathlib.Path(".").glob("**/Cargo.toml"))
                         if (p.parent / "src").is_dir() and "target" not in p.parts and ".venv" not in p.parts]
found = False
for crate in crates:
    src = pathlib.Path(crate) / "src"
    mods = modules(src)
    g = {m: {d for d in deps(mods, t, m) if not d.startswith(m + "::") and not m.startswith(d + "::")} for m, t in mods.items() if m != "crate"}
    # find SCCs (Tarjan)
    index = {}; low = {}; st = []; on = set(); sccs = []; i = [0]
    def sc(v):
        index[v] = low[v] = i[0]; i[0] += 1; st.append(v); on.add(v)
        for w in g.get(v, ()):
            if w not in g: continue
            if w not in index: sc(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = st.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: sccs.append(sorted(comp))
    for v in g:
        if v not in index: sc(v)
    if sccs:
        found = True
        print(f"{crate}: modules importing each other in a circle: {sccs}")
if found:
    sys.exit(1)
print(f"no import cycles between modules ({len(crates)} crates)")
