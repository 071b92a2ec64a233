"""Check template.yaml offline, as written and as SAM expands it.

    python scripts/lint_template.py [TEMPLATE]

1. cfn-lint on the template as written (SAM resources checked against SAM's schemas);
2. cfn-lint on the plain CloudFormation the SAM translator makes of it: only there do SAM
   events become resources, so only there does a bucket -> function -> role -> bucket
   dependency cycle (the classic S3-event mistake) show up;
3. a function triggered by S3 must not be able to write where its trigger watches.

Exits 1 and names every problem when one of them fails; warnings are printed and fail too.
"""

import argparse
import json
import sys
from pathlib import Path

from cfnlint.api import lint
from samtranslator.model.exceptions import InvalidDocumentException

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sam_template  # noqa: E402  (a sibling module; scripts/ is not a package)


def cfn_lint_problems(text: str, label: str) -> list[str]:
    return [f"{label}:{match.linenumber}: {match.rule.id} {match.message}" for match in lint(text)]


def problems(path: Path) -> list[str]:
    found = cfn_lint_problems(path.read_text(), str(path))
    try:
        expanded = sam_template.expand(sam_template.load(path))
    except InvalidDocumentException as error:
        return [*found, *(f"{path} (SAM translator): {cause.message}" for cause in error.causes)]
    found += cfn_lint_problems(json.dumps(expanded, indent=1), f"{path} expanded by SAM")
    try:
        found += [f"{path}: {problem}" for problem in sam_template.retrigger_problems(sam_template.load(path), expanded)]
    except ValueError as error:  # a write grant it cannot place is a problem, not a pass
        found.append(f"{path}: {error}")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("template", nargs="?", type=Path, default=sam_template.TEMPLATE, help="default: template.yaml")
    path = parser.parse_args(argv).template
    found = problems(path)
    for problem in found:
        print(problem)
    print(f"{path}: {'ok' if not found else f'{len(found)} problem(s)'}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
