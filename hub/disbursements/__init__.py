"""Loan disbursements: orders from the loan system credited to card accounts exactly once."""
