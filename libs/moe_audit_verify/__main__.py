import sys

from moe_audit_verify.cli import main

sys.exit(main())
