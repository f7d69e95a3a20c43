"""HTTP plumbing: the app factory, middleware, problems, pagination, OpenAPI, health, pages."""
