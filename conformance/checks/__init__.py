"""The checks, one module per subject; each module's `CHECKS` lists its entries (see `conformance.check`)."""
