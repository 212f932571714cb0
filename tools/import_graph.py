"""The house drawn from its imports: every ``import`` between earmark's modules (at module level or inside a
function; ``TYPE_CHECKING`` blocks left out) and the circles among them.

    python tools/import_graph.py            # prints modules, edges, imports inside functions, and each cycle

Exit status 1 when there is a cycle (``tests/test_imports.py`` runs it).
"""
import ast
import pathlib
import sys


def cycles(root: pathlib.Path):
    """(modules, graph, lazy edges, cycles) of the package under ``root`` (the folder holding ``earmark``)."""
    mods = {}
    for f in (root / "earmark").rglob("*.py"):
        rel = f.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        mods[".".join(parts)] = (f, is_pkg)
    graph = {m: set() for m in mods}
    lazy = {m: set() for m in mods}
    for m, (f, is_pkg) in mods.items():
        tree = ast.parse(f.read_text())
        toplevel = {id(n) for n in tree.body}
        for n in ast.walk(tree):
            targets = []
            if isinstance(n, ast.Import):
                targets = [a.name for a in n.names]
            elif isinstance(n, ast.ImportFrom):
                if n.level:
                    base = m.split(".") if is_pkg else m.split(".")[:-1]
                    base = base[: len(base) - (n.level - 1)]
                    mod = ".".join(base + ([n.module] if n.module else []))
                else:
                    mod = n.module or ""
                subs = [f"{mod}.{a.name}" for a in n.names if f"{mod}.{a.name}" in mods]
                rest = [a for a in n.names if f"{mod}.{a.name}" not in mods]
                targets = subs + ([mod] if rest else [])
            else:
                continue
            for t in targets:
                if t in mods and t != m:
                    graph[m].add(t)
                    if id(n) not in toplevel:
                        lazy[m].add(t)
    # drop TYPE_CHECKING-only imports
    for m, (f, _) in mods.items():
        tree = ast.parse(f.read_text())
        for n in tree.body:
            if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.dump(n.test):
                for s in ast.walk(n):
                    if isinstance(s, ast.ImportFrom):
                        base = m.split(".") if mods[m][1] else m.split(".")[:-1]
                        base = base[: len(base) - (s.level - 1)] if s.level else []
                        mod = ".".join(base + ([s.module] if s.module else [])) if s.level else s.module
                        for t in [mod] + [f"{mod}.{a.name}" for a in s.names]:
                            graph[m].discard(t)
    # a submodule's implicit import of its package's __init__ is not an edge (``from . import sub`` names ``sub``)
    # Tarjan SCC
    index, low, onstack, stack, sccs = {}, {}, set(), [], []
    sys.setrecursionlimit(10000)
    def strong(v, c=[0]):
        index[v] = low[v] = c[0]; c[0] += 1; stack.append(v); onstack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w); low[v] = min(low[v], low[w])
            elif w in onstack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); onstack.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: sccs.append(sorted(comp))
    for v in graph:
        if v not in index: strong(v)
    return mods, graph, lazy, sccs


def main(argv=None) -> int:
    root = pathlib.Path(argv[0] if argv else pathlib.Path(__file__).resolve().parents[1] / "core")
    mods, graph, lazy, sccs = cycles(root)
    print(f"{len(mods)} modules, {sum(len(g) for g in graph.values())} import edges, "
          f"{sum(len(g) for g in lazy.values())} inside functions; {len(sccs)} cycles")
    for c in sccs:
        print("  cycle:", ", ".join(c))
        for a in c:
            for b in sorted(graph[a] & set(c)):
                print(f"     {a} -> {b}{' (in a function)' if b in lazy[a] else ''}")

    return 1 if sccs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
