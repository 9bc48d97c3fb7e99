"""Run the CLI as `python -m odoofleet`."""

from odoofleet.cli import main

raise SystemExit(main())
