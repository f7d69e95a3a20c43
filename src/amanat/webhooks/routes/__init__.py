"""HTTP edges of webhooks: endpoints, deliveries and the events feed."""
