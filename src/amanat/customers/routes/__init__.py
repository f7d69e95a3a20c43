"""HTTP edges of customers."""
