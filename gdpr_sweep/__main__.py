"""`python -m gdpr_sweep`."""

from .cli import main

main()
