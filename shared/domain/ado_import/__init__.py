"""Import an Azure DevOps classic release definition as a Slipway definition, with a migration report
(issue 18). Pure domain code: the service, the HTTP route and the CLI build on `import_definition`."""

from shared.domain.ado_import.importer import import_definition
from shared.domain.ado_import.model import ImportOptions, ImportResult, ReportEntry

__all__ = ["ImportOptions", "ImportResult", "ReportEntry", "import_definition"]
