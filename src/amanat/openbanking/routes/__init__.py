"""Open banking's HTTP edge: the OBIE API for TPPs and the PSU's hosted pages."""
