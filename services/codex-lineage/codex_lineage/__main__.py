import sys

from codex_lineage.compliance.checks import NAMES
from codex_lineage.compliance.rules import RulesError, load_all, resolve
from codex_lineage.settings import LineageSettings
from moe_core.runtime.service import run

if __name__ == "__main__":
    settings = LineageSettings()
    try:  # create_app refuses them too; here the operator gets the file and line without a traceback
        load_all(resolve(settings.compliance_rules_dir), NAMES)
    except RulesError as exc:
        print(f"codex-lineage does not start: compliance rules refused: {exc}", file=sys.stderr)
        sys.exit(2)
    run("codex_lineage.app:create_app", settings)
