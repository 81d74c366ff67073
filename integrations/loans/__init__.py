"""The bank's loan system: disbursement orders in, signed callbacks out."""
