"""import-linter contract types for amanat's one-package-per-capability shape.

The built-in contract types name modules, so a rule about *every* capability would need
editing for each new one (and adding a capability must touch only the composition root).
This contract finds the capabilities itself: every direct subpackage of the root package
except the ones named as shared (platform, kernel) or apart (the sandbox rail). Written
here because import-linter has no contract for "no package imports another package's
private modules", and it takes a custom contract type for exactly this.

For each capability it checks:

- no module outside the capability imports its private modules (``store``, ``tables``...);
- the shared packages import no capability at all.
"""

from __future__ import annotations

from grimp import ImportGraph
from importlinter.application import contract_utils, output
from importlinter.application.contract_utils import AlertLevel
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class CapabilitiesContract(Contract):
    type_name = "capabilities"

    root = fields.StringField()
    shared = fields.ListField(subfield=fields.StringField())
    apart = fields.ListField(subfield=fields.StringField(), required=False)
    private = fields.ListField(subfield=fields.StringField())
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        contract_utils.remove_ignored_imports(
            graph=graph,
            ignore_imports=self.ignore_imports,  # type: ignore[arg-type]
            unmatched_alerting=AlertLevel.ERROR,
        )
        root: str = self.root  # type: ignore[assignment]
        shared = {f"{root}.{name}" for name in self.shared}  # type: ignore[attr-defined]
        apart = {f"{root}.{name}" for name in (self.apart or [])}  # type: ignore[attr-defined]
        children = {m for m in graph.find_children(root) if graph.find_children(m)}
        capabilities = sorted(children - shared - apart)
        violations: list[str] = []
        for capability in capabilities:
            inside = {capability, *graph.find_descendants(capability)}
            for name in self.private:  # type: ignore[attr-defined]
                private = f"{capability}.{name}"
                if private not in graph.modules:
                    continue
                targets = {private, *graph.find_descendants(private)}
                for target in sorted(targets):
                    for importer in sorted(graph.find_modules_that_directly_import(target)):
                        if importer not in inside:
                            violations.append(f"{importer} imports {target}")
            for package in sorted(shared):
                for module in sorted({package, *graph.find_descendants(package)}):
                    for imported in sorted(graph.find_modules_directly_imported_by(module)):
                        if imported in inside:
                            violations.append(f"{module} (shared) imports {imported}")
        return ContractCheck(
            kept=not violations,
            metadata={"capabilities": capabilities, "violations": violations},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for violation in check.metadata["violations"]:
            output.print_error(f"- {violation}")
        output.new_line()
