"""Reports: sums over ledger rows, never figures computed elsewhere."""
