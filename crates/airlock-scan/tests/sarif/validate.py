"""Validates SARIF files against the vendored SARIF 2.1.0 schema.

Usage: validate.py FILE...   (exit 0: all valid; 1: a file is invalid, with the
first errors on stderr; 3: the `jsonschema` package is missing).
"""
import json
import pathlib
import sys

try:
    import jsonschema
except ImportError:
    sys.stderr.write("jsonschema is not installed (pip install jsonschema)\n")
    sys.exit(3)

schema_path = pathlib.Path(__file__).with_name("sarif-2.1.0-rtm.5.json")
schema = json.loads(schema_path.read_text())
validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
bad = 0
for name in sys.argv[1:]:
    doc = json.loads(pathlib.Path(name).read_text())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    for e in errors[:5]:
        path = "/".join(str(p) for p in e.absolute_path)
        sys.stderr.write(f"{name}: /{path}: {e.message}\n")
    bad += bool(errors)
sys.exit(1 if bad else 0)
