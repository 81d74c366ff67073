"""The console's pages, one module per area; `hub/console/endpoints.py` gathers them."""
