"""The layout docs/architecture.md describes: imports run one way (no circle, function-local imports
included), and no module reaches for another's underscore names."""
import ast

from conftest import REPO

PACKAGE = REPO / "reproduce"


def module_name(path):
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def imports_of(path):
    """(module imported, names taken from it) for every import in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:                                         # relative: from the file's package
                package = module_name(path).split(".")[:-node.level + (path.name == "__init__.py")]
                base = ".".join(package + [node.module])
            found.append((base, [alias.name for alias in node.names]))
    return found


def import_graph():
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for base, names in imports_of(path):
            for candidate in [f"{base}.{n}" for n in names] + [base]:
                if candidate in modules and candidate != name:
                    targets.add(candidate)
                    break
        graph[name] = targets
    return graph


def test_no_module_imports_in_a_circle():
    graph = import_graph()
    assert len(graph) > 20                                        # the walk found the package
    done, path = set(), []

    def visit(name):
        if name in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(name):] + [name]))
        if name in done:
            return
        path.append(name)
        for target in sorted(graph[name]):
            visit(target)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_no_module_takes_another_modules_underscore_names():
    taken = [(module_name(path), base, name) for path in PACKAGE.rglob("*.py")
             for base, names in imports_of(path) if base.startswith("reproduce")
             for name in names if name.startswith("_")]
    assert taken == []
